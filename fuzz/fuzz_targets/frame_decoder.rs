//! The frame decoder fed one byte stream in arbitrary splits.
//!
//! Input: the body limit (a byte: small limits make "too large" reachable, 255 means the
//! real 1 MiB control limit), up to 15 cut points, then the stream. The stream is decoded
//! three ways — pushed whole, pushed in the given pieces, and read the way the relay and
//! the peer read a stream (exactly `wanted()` bytes at a time) — and each must give the
//! frames, the error and the end-of-stream verdict of a plain reference parse. Bodies
//! are not decoded here: `wire_message` fuzzes that, and decoding them here made this
//! target's corpus a copy of that one's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uchat_fuzz::input::Input;
use uchat_wire::FrameError;
use uchat_wire::frame::{FrameDecoder, HEADER_BYTES, MAX_CONTROL_FRAME_BYTES};

/// What decoding a whole stream gave: the frames taken, the error that stopped it, and
/// what `finish` said if nothing did.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<FrameError>,
    finish: Option<Result<(), FrameError>>,
}

/// The protocol as design.md states it: length, body, repeat; an oversized length stops
/// the stream; leftovers at the end are a truncated frame.
fn reference(stream: &[u8], max: usize) -> Outcome {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some((header, after)) = rest.split_first_chunk::<HEADER_BYTES>() {
        let len = u32::from_be_bytes(*header) as usize;
        if len > max {
            let error = Some(FrameError::TooLarge { len, max });
            return Outcome {
                frames,
                error,
                finish: None,
            };
        }
        if after.len() < len {
            break;
        }
        frames.push(after[..len].to_vec());
        rest = &after[len..];
    }
    let finish = if rest.is_empty() {
        Ok(())
    } else {
        let expected = match rest.first_chunk::<HEADER_BYTES>() {
            Some(header) => HEADER_BYTES + u32::from_be_bytes(*header) as usize,
            None => HEADER_BYTES,
        };
        Err(FrameError::Truncated {
            expected,
            received: rest.len(),
        })
    };
    Outcome {
        frames,
        error: None,
        finish: Some(finish),
    }
}

/// Takes every complete frame; false once the decoder reported an error.
fn drain(decoder: &mut FrameDecoder, out: &mut Outcome) -> bool {
    loop {
        match decoder.next_frame() {
            Ok(Some(body)) => out.frames.push(body),
            Ok(None) => return true,
            Err(e) => {
                out.error = Some(e);
                return false;
            }
        }
    }
}

/// Pushes `pieces` in order, taking frames after each.
fn decode_in_pieces<'a>(pieces: impl Iterator<Item = &'a [u8]>, max: usize) -> Outcome {
    let mut decoder = FrameDecoder::new(max);
    let mut out = Outcome {
        frames: Vec::new(),
        error: None,
        finish: None,
    };
    for piece in pieces {
        if !take(&mut decoder, piece, &mut out) {
            return out;
        }
    }
    out.finish = Some(decoder.finish());
    out
}

/// Pushes one piece and drains the frames it completes; false once the decoder failed.
fn take(decoder: &mut FrameDecoder, piece: &[u8], out: &mut Outcome) -> bool {
    if let Err(e) = decoder.push(piece) {
        out.error = Some(e);
        return false;
    }
    drain(decoder, out)
}

/// Reads the way a stream reader sizes its reads: `wanted()` bytes at a time.
fn decode_as_reader(stream: &[u8], max: usize) -> Outcome {
    let mut decoder = FrameDecoder::new(max);
    let mut out = Outcome {
        frames: Vec::new(),
        error: None,
        finish: None,
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let wanted = decoder.wanted();
        assert!(wanted >= 1, "a reader asked for nothing would stall");
        let (piece, after) = rest.split_at(wanted.min(rest.len()));
        rest = after;
        if !take(&mut decoder, piece, &mut out) {
            return out;
        }
    }
    out.finish = Some(decoder.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = match input.u8() {
        255 => MAX_CONTROL_FRAME_BYTES,
        small => usize::from(small) * 4,
    };
    let cuts_wanted = usize::from(input.u8() % 16);
    let mut cuts: Vec<u16> = (0..cuts_wanted).map(|_| input.u16()).collect();
    let stream = input.rest();
    cuts.iter_mut()
        .for_each(|c| *c = (usize::from(*c) % (stream.len() + 1)) as u16);
    cuts.sort_unstable();

    let expected = reference(stream, max);
    assert_eq!(
        decode_in_pieces(std::iter::once(stream), max),
        expected,
        "pushed whole"
    );
    let mut bounds = vec![0usize];
    bounds.extend(cuts.iter().map(|&c| usize::from(c)));
    bounds.push(stream.len());
    let pieces = bounds.windows(2).map(|w| &stream[w[0]..w[1]]);
    assert_eq!(
        decode_in_pieces(pieces, max),
        expected,
        "pushed in pieces at {cuts:?}"
    );
    assert_eq!(
        decode_as_reader(stream, max),
        expected,
        "read wanted() at a time"
    );
});
