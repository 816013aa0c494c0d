//! Virtual scrolling for rows of different heights: each row's height (estimated, then
//! measured once drawn) and the running total, so a frame finds the rows in view by binary
//! search and draws only those, however long the list.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

use eframe::egui::{self, UiBuilder};

/// Heights and tops of a list of rows.
#[derive(Debug, Default, Clone)]
pub struct RowHeights {
    heights: Vec<f32>,
    /// `tops[i]` is where row `i` starts; `tops[len]` is the total height.
    tops: Vec<f32>,
    /// The first row whose top is stale.
    dirty_from: Option<usize>,
}

impl RowHeights {
    /// Rows with these heights.
    pub fn new(heights: Vec<f32>) -> RowHeights {
        let mut rows = RowHeights {
            heights,
            tops: Vec::new(),
            dirty_from: Some(0),
        };
        rows.settle();
        rows
    }

    /// Adds rows at the end.
    pub fn extend(&mut self, heights: impl IntoIterator<Item = f32>) {
        let from = self.heights.len();
        self.heights.extend(heights);
        if self.heights.len() > from {
            self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
        }
        self.settle();
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.heights.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }

    /// Row `i`'s height.
    pub fn height(&self, i: usize) -> f32 {
        self.heights[i]
    }

    /// Sets row `i`'s height (as measured); tops after it are brought up to date on the
    /// next [`RowHeights::settle`]. Returns whether it changed.
    pub fn set_height(&mut self, i: usize, height: f32) -> bool {
        if (self.heights[i] - height).abs() < 0.5 {
            return false;
        }
        self.heights[i] = height;
        self.dirty_from = Some(self.dirty_from.map_or(i, |d| d.min(i)));
        true
    }

    /// Brings the tops up to date after height changes.
    pub fn settle(&mut self) {
        let Some(from) = self.dirty_from.take() else {
            return;
        };
        self.tops.resize(self.heights.len() + 1, 0.0);
        let mut top = if from == 0 { 0.0 } else { self.tops[from] };
        for i in from..self.heights.len() {
            self.tops[i] = top;
            top += self.heights[i];
        }
        self.tops[self.heights.len()] = top;
    }

    /// The total height.
    pub fn total(&self) -> f32 {
        self.tops.last().copied().unwrap_or(0.0)
    }

    /// Where row `i` starts.
    pub fn top(&self, i: usize) -> f32 {
        self.tops[i]
    }

    /// The rows that overlap `view` (a range of y from the list's top).
    pub fn visible(&self, view: Range<f32>) -> Range<usize> {
        if self.heights.is_empty() {
            return 0..0;
        }
        // The last row starting at or above view.start, then every row starting before
        // view.end.
        let first = self.tops[..self.heights.len()]
            .partition_point(|&top| top <= view.start)
            .saturating_sub(1);
        let end = self.tops[..self.heights.len()].partition_point(|&top| top < view.end);
        first..end.max(first + 1).min(self.heights.len())
    }
}

/// A scrolling list of keyed rows that draws only the rows in view. Heights are
/// estimated until a row is drawn, then measured; when rows arrive above the first one
/// (earlier history), the view moves down by their height so what was in view stays.
#[derive(Debug)]
pub struct VirtualList<K> {
    rows: RowHeights,
    /// What the rows were made for: (caller's fingerprint, width).
    made_for: Option<(u64, u32)>,
    measured: HashMap<K, f32>,
    first: Option<K>,
    offset: f32,
    scroll_by: f32,
}

impl<K> Default for VirtualList<K> {
    fn default() -> Self {
        VirtualList {
            rows: RowHeights::default(),
            made_for: None,
            measured: HashMap::new(),
            first: None,
            offset: 0.0,
            scroll_by: 0.0,
        }
    }
}

/// Where the view stood after a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListView {
    /// The view's top is at the list's top.
    pub at_top: bool,
    /// The view's bottom is at the list's bottom.
    pub at_bottom: bool,
    /// How many rows were drawn.
    pub drawn: usize,
}

impl<K: Copy + Hash + Eq> VirtualList<K> {
    /// Remakes the rows when `fingerprint` (the caller's revision of `keys`) or the width
    /// changed; `estimate(i)` guesses row `i`'s height before it is drawn.
    pub fn prepare(
        &mut self,
        fingerprint: u64,
        width: f32,
        keys: &[K],
        estimate: impl Fn(usize) -> f32,
    ) {
        let made_for = (fingerprint, width as u32);
        if self.made_for == Some(made_for) {
            return;
        }
        if self.made_for.is_some_and(|(_, w)| w != made_for.1) {
            self.measured.clear();
        }
        let heights = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                self.measured
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| estimate(i))
            })
            .collect();
        let had_rows = !self.rows.is_empty();
        self.rows = RowHeights::new(heights);
        if had_rows
            && let Some(first) = self.first
            && let Some(at) = keys.iter().position(|k| *k == first)
            && at > 0
        {
            self.scroll_by += self.rows.top(at);
        }
        self.first = keys.first().copied();
        self.made_for = Some(made_for);
    }

    /// Adds rows at the end (new messages) without remaking the others; `fingerprint` is
    /// what the rows are made for now.
    pub fn append(&mut self, fingerprint: u64, heights: impl IntoIterator<Item = f32>) {
        self.rows.extend(heights);
        if let Some((_, width)) = self.made_for {
            self.made_for = Some((fingerprint, width));
        }
    }

    /// Forgets the rows and the scroll position.
    pub fn reset(&mut self) {
        *self = VirtualList::default();
    }

    /// Draws the rows in view inside a vertical scroll area, `draw(ui, i)` for row `i`.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        id_salt: &str,
        stick_to_bottom: bool,
        keys: &[K],
        mut draw: impl FnMut(&mut egui::Ui, usize),
    ) -> ListView {
        let mut area = egui::ScrollArea::vertical()
            .id_salt(id_salt)
            .auto_shrink([false, false])
            .stick_to_bottom(stick_to_bottom);
        let scroll_by = std::mem::take(&mut self.scroll_by);
        if scroll_by > 0.0 {
            area = area.vertical_scroll_offset(self.offset + scroll_by);
        }
        let width = ui.available_width();
        let rows = &mut self.rows;
        let measured = &mut self.measured;
        let output = area.show_viewport(ui, |ui, viewport| {
            ui.set_height(rows.total());
            let origin = ui.max_rect().min;
            let visible = rows.visible(viewport.min.y..viewport.max.y);
            let drawn = visible.len();
            for i in visible {
                let rect = egui::Rect::from_min_size(
                    origin + egui::vec2(0.0, rows.top(i)),
                    egui::vec2(width, rows.height(i)),
                );
                let height = ui
                    .scope_builder(UiBuilder::new().max_rect(rect).id_salt(i), |ui| draw(ui, i))
                    .response
                    .rect
                    .height();
                if rows.set_height(i, height) {
                    measured.insert(keys[i], height);
                }
            }
            rows.settle();
            ListView {
                at_top: viewport.min.y < 40.0,
                at_bottom: viewport.max.y > rows.total() - 40.0,
                drawn,
            }
        });
        self.offset = output.state.clamped_offset().y;
        output.inner
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// How far down the view is scrolled, and the list's whole height.
    pub fn scrolled(&self) -> (f32, f32) {
        (self.offset, self.rows.total())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rows_in_view_by_their_tops() {
        let rows = RowHeights::new(vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(rows.total(), 100.0);
        assert_eq!(rows.top(2), 30.0);
        assert_eq!(rows.visible(0.0..5.0), 0..1);
        assert_eq!(rows.visible(15.0..35.0), 1..3);
        assert_eq!(rows.visible(30.0..31.0), 2..3);
        assert_eq!(rows.visible(95.0..200.0), 3..4);
        assert_eq!(RowHeights::new(Vec::new()).visible(0.0..10.0), 0..0);
    }

    #[test]
    fn rows_added_at_the_end_follow_the_last_one() {
        let mut rows = RowHeights::new(vec![10.0, 20.0]);
        rows.extend([5.0, 5.0]);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.top(2), 30.0);
        assert_eq!(rows.total(), 40.0);
        assert_eq!(rows.visible(36.0..50.0), 3..4);
    }

    #[test]
    fn a_measured_height_moves_the_rows_after_it_only() {
        let mut rows = RowHeights::new(vec![10.0; 100_000]);
        assert!(rows.set_height(99_000, 50.0));
        assert!(!rows.set_height(5, 10.2), "sub-pixel changes are ignored");
        rows.settle();
        assert_eq!(rows.top(99_000), 990_000.0);
        assert_eq!(rows.top(99_001), 990_050.0);
        assert_eq!(rows.total(), 1_000_040.0);
        assert_eq!(rows.visible(990_010.0..990_020.0), 99_000..99_001);
    }
}
