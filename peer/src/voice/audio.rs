//! Where a call's sound comes from and goes to, behind one pair of traits: a WAV file
//! (hound), silence, or the sound card (cpal). Everything is 48 kHz mono in 20 ms frames
//! at this boundary; WAV files of another rate or channel count are converted on reading.
//!
//! No sound card is a normal case: [`open_input_device`] and [`open_output_device`]
//! return an error that says why, and the caller carries on with silence and says so.
//! [`sound_devices`] lists the devices to choose from; `None` means the system's default.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::codec::{FRAME_SAMPLES, SAMPLE_RATE};

/// Why an audio input or output could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A WAV file could not be read or written.
    #[error("WAV file {path}: {source}")]
    Wav {
        /// The WAV file given for the call's input or output.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: hound::Error,
    },
    /// No usable sound device.
    #[error("no usable sound {direction} device: {reason}")]
    NoDevice {
        /// "input" or "output".
        direction: &'static str,
        /// Why, in words for people: what cpal said, or that the system has no such device.
        reason: String,
    },
}

/// A source of 20 ms frames of 48 kHz mono PCM.
pub trait AudioInput: Send {
    /// Fills `frame` ([`FRAME_SAMPLES`] samples); returns false once the input has ended
    /// (the frame is silence then).
    fn read_frame(&mut self, frame: &mut [i16]) -> bool;
}

/// A sink of 20 ms frames of 48 kHz mono PCM.
pub trait AudioOutput: Send {
    /// Plays (or writes) one frame.
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError>;
    /// Finishes (a WAV file gets its final header).
    fn finish(self: Box<Self>) -> Result<(), AudioError>;
}

/// Silence in, and nowhere out.
#[derive(Debug, Default)]
pub struct Silence;

impl AudioInput for Silence {
    fn read_frame(&mut self, frame: &mut [i16]) -> bool {
        frame.fill(0);
        true
    }
}

impl AudioOutput for Silence {
    fn write_frame(&mut self, _frame: &[i16]) -> Result<(), AudioError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

/// PCM held in memory, played once (then silence).
#[derive(Debug)]
pub struct PcmInput {
    samples: Vec<i16>,
    at: usize,
}

impl PcmInput {
    /// Plays `samples` (48 kHz mono).
    pub fn new(samples: Vec<i16>) -> Self {
        Self { samples, at: 0 }
    }

    /// Reads a WAV file of any rate and channel count, as 48 kHz mono.
    pub fn from_wav(path: &Path) -> Result<Self, AudioError> {
        Ok(Self::new(read_wav_mono_48k(path)?))
    }
}

impl AudioInput for PcmInput {
    fn read_frame(&mut self, frame: &mut [i16]) -> bool {
        let end = (self.at + frame.len()).min(self.samples.len());
        let taken = end - self.at;
        frame[..taken].copy_from_slice(&self.samples[self.at..end]);
        frame[taken..].fill(0);
        self.at = end;
        taken > 0
    }
}

/// Reads a WAV file as 48 kHz mono 16-bit samples: channels are averaged, other rates are
/// resampled linearly.
pub fn read_wav_mono_48k(path: &Path) -> Result<Vec<i16>, AudioError> {
    let wav_error = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_error)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_error)?
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    let resampled = resample_linear(&mono, spec.sample_rate, SAMPLE_RATE);
    Ok(resampled.into_iter().map(to_i16).collect())
}

fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Linear-interpolation resampling (enough for speech; a call is 48 kHz end to end).
fn resample_linear(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 {
        return input.to_vec();
    }
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let left = pos.floor() as usize;
            let frac = (pos - left as f64) as f32;
            let a = input[left.min(input.len() - 1)];
            let b = input[(left + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

/// Keeps what is played in memory (the benchmark compares it with what was sent).
#[derive(Debug, Clone, Default)]
pub struct PcmOutput {
    samples: Arc<Mutex<Vec<i16>>>,
}

impl PcmOutput {
    /// Everything played so far.
    pub fn samples(&self) -> Vec<i16> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AudioOutput for PcmOutput {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(frame);
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

/// Writes what is played to a 48 kHz mono 16-bit WAV file.
pub struct WavOutput {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl std::fmt::Debug for WavOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavOutput")
            .field("path", &self.path)
            .finish()
    }
}

impl WavOutput {
    /// Creates (or replaces) `path`.
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|source| AudioError::Wav {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            writer,
            path: path.to_owned(),
        })
    }
}

impl AudioOutput for WavOutput {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let mut samples = self.writer.get_i16_writer(frame.len() as u32);
        for &s in frame {
            samples.write_sample(s);
        }
        samples.flush().map_err(|source| AudioError::Wav {
            path: self.path.clone(),
            source,
        })
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        let path = self.path.clone();
        self.writer
            .finalize()
            .map_err(|source| AudioError::Wav { path, source })
    }
}

/// Samples shared between a cpal callback and the call, bounded so a stalled side
/// cannot make it grow (200 ms).
#[derive(Clone, Default)]
struct SharedSamples(Arc<Mutex<VecDeque<i16>>>);

const DEVICE_BUFFER_SAMPLES: usize = FRAME_SAMPLES * 10;

impl SharedSamples {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<i16>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a cpal stream alive on its own thread (cpal streams cannot move between
/// threads) until dropped.
struct DeviceThread {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a device records or plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Records: a microphone or another capture device.
    Input,
    /// Plays: speakers, headphones or another playback device.
    Output,
}

/// A sound device the system offers, to choose from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SoundDevice {
    /// Its stable id (cpal's `host:id`), to open it by.
    pub id: String,
    /// Its name, for people.
    pub name: String,
}

/// The devices of `direction` the system offers now (none without a sound system). Slow
/// on some systems, since ALSA probes every device: call it off a UI thread.
pub fn sound_devices(direction: Direction) -> Vec<SoundDevice> {
    use cpal::traits::DeviceTrait;
    let mut found: Vec<SoundDevice> = devices_of(&cpal::default_host(), direction)
        .into_iter()
        .filter_map(|device| {
            let id = device.id().ok()?.to_string();
            let name = device
                .description()
                .map_or_else(|_| id.clone(), |d| d.name().to_string());
            Some(SoundDevice { id, name })
        })
        .collect();
    // A device listed twice keeps its first place (dedup_by alone drops only neighbours).
    let mut seen = std::collections::HashSet::new();
    found.retain(|device| seen.insert(device.id.clone()));
    found
}

/// The cpal devices of `direction` on `host` (none if the host cannot list them).
fn devices_of(host: &cpal::Host, direction: Direction) -> Vec<cpal::Device> {
    use cpal::traits::HostTrait;
    let listed = match direction {
        Direction::Input => host.input_devices().map(Iterator::collect),
        Direction::Output => host.output_devices().map(Iterator::collect),
    };
    listed.unwrap_or_default()
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// The device of `direction` with id `wanted` (from [`sound_devices`]), or the system's
/// default one, asked for 48 kHz: the device, the stream config and its channel count.
fn find_device(
    direction: Direction,
    wanted: Option<&str>,
) -> Result<(cpal::Device, cpal::StreamConfig, usize), String> {
    use cpal::traits::{DeviceTrait, HostTrait};
    let host = cpal::default_host();
    let device = match (wanted, direction) {
        (Some(id), _) => devices_of(&host, direction)
            .into_iter()
            .find(|d| d.id().is_ok_and(|found| found.to_string() == id))
            .ok_or_else(|| {
                format!(
                    "no {} device {id} (unplugged? choose another in the settings)",
                    direction.as_str()
                )
            })?,
        (None, Direction::Input) => host
            .default_input_device()
            .ok_or_else(|| "the system has no input device".to_string())?,
        (None, Direction::Output) => host
            .default_output_device()
            .ok_or_else(|| "the system has no output device".to_string())?,
    };
    let supported = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    };
    let mut config = supported.map_err(|e| e.to_string())?.config();
    config.sample_rate = SAMPLE_RATE;
    let channels = usize::from(config.channels.max(1));
    Ok((device, config, channels))
}

/// Opens the device of `direction` with id `wanted` (the default one if `None`) on a
/// thread of its own (cpal streams cannot move between threads), with `build` making the
/// stream that moves samples between the device and `samples`; returns once the stream
/// plays, or why it could not.
fn open_device<F>(
    direction: Direction,
    wanted: Option<&str>,
    samples: SharedSamples,
    build: F,
) -> Result<DeviceThread, AudioError>
where
    F: FnOnce(
            &cpal::Device,
            cpal::StreamConfig,
            usize,
            SharedSamples,
        ) -> Result<cpal::Stream, String>
        + Send
        + 'static,
{
    use cpal::traits::StreamTrait;
    let no_device = |reason: String| AudioError::NoDevice {
        direction: direction.as_str(),
        reason,
    };
    let wanted = wanted.map(str::to_string);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("uchat-audio-{}", direction.as_str()))
        .spawn(move || {
            let found = find_device(direction, wanted.as_deref());
            let stream = found.and_then(|(device, config, channels)| {
                let stream = build(&device, config, channels, samples)?;
                stream.play().map_err(|e| e.to_string())?;
                Ok(stream)
            });
            match stream {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    // Plays until the handle is dropped.
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(reason) => {
                    let _ = ready_tx.send(Err(reason));
                }
            }
        })
        .map_err(|e| no_device(e.to_string()))?;
    let handle = DeviceThread {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(reason)) => Err(no_device(reason)),
        Err(_) => Err(no_device("the audio thread ended".to_owned())),
    }
}

/// The default microphone, through cpal.
pub struct DeviceInput {
    samples: SharedSamples,
    _device: DeviceThread,
}

/// The microphone with id `device` (the default one if `None`), or silence when there is
/// none (with why, to tell the user): no sound card is a normal case.
pub fn input_or_silence(device: Option<&str>) -> (Box<dyn AudioInput>, Option<AudioError>) {
    match open_input_device(device) {
        Ok(device) => (Box::new(device), None),
        Err(e) => (Box::new(Silence), Some(e)),
    }
}

/// The speaker with id `device` (the default one if `None`), or nowhere when there is
/// none (with why, to tell the user).
pub fn output_or_silence(device: Option<&str>) -> (Box<dyn AudioOutput>, Option<AudioError>) {
    match open_output_device(device) {
        Ok(device) => (Box::new(device), None),
        Err(e) => (Box::new(Silence), Some(e)),
    }
}

/// Opens the input device with id `device` (the default one if `None`) at 48 kHz.
pub fn open_input_device(device: Option<&str>) -> Result<DeviceInput, AudioError> {
    use cpal::traits::DeviceTrait;
    let samples = SharedSamples::default();
    let device = open_device(
        Direction::Input,
        device,
        samples.clone(),
        |device, config, channels, sink| {
            device
                .build_input_stream::<f32, _, _>(
                    config,
                    move |data: &[f32], _| {
                        let mut queue = sink.lock();
                        for chunk in data.chunks(channels) {
                            let mono = chunk.iter().sum::<f32>() / chunk.len() as f32;
                            queue.push_back(to_i16(mono));
                        }
                        while queue.len() > DEVICE_BUFFER_SAMPLES {
                            queue.pop_front();
                        }
                    },
                    |e| tracing::warn!(error = %e, "sound input failed"),
                    None,
                )
                .map_err(|e| e.to_string())
        },
    )?;
    Ok(DeviceInput {
        samples,
        _device: device,
    })
}

impl AudioInput for DeviceInput {
    fn read_frame(&mut self, frame: &mut [i16]) -> bool {
        let mut queue = self.samples.lock();
        for slot in frame.iter_mut() {
            *slot = queue.pop_front().unwrap_or(0);
        }
        true
    }
}

/// The default speaker, through cpal.
pub struct DeviceOutput {
    samples: SharedSamples,
    _device: DeviceThread,
}

/// Opens the output device with id `device` (the default one if `None`) at 48 kHz.
pub fn open_output_device(device: Option<&str>) -> Result<DeviceOutput, AudioError> {
    use cpal::traits::DeviceTrait;
    let samples = SharedSamples::default();
    let device = open_device(
        Direction::Output,
        device,
        samples.clone(),
        |device, config, channels, source| {
            device
                .build_output_stream::<f32, _, _>(
                    config,
                    move |data: &mut [f32], _| {
                        let mut queue = source.lock();
                        for chunk in data.chunks_mut(channels) {
                            let sample = f32::from(queue.pop_front().unwrap_or(0)) / 32768.0;
                            chunk.fill(sample);
                        }
                    },
                    |e| tracing::warn!(error = %e, "sound output failed"),
                    None,
                )
                .map_err(|e| e.to_string())
        },
    )?;
    Ok(DeviceOutput {
        samples,
        _device: device,
    })
}

impl AudioOutput for DeviceOutput {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let mut queue = self.samples.lock();
        queue.extend(frame);
        while queue.len() > DEVICE_BUFFER_SAMPLES {
            queue.pop_front();
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stereo_44k1_wav_reads_as_48k_mono_and_a_written_one_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).expect("creates");
        for _ in 0..44_100 {
            writer.write_sample(1000i16).expect("writes");
            writer.write_sample(3000i16).expect("writes");
        }
        writer.finalize().expect("finalizes");
        let samples = read_wav_mono_48k(&path).expect("reads");
        assert_eq!(samples.len(), 48_000);
        assert!(samples.iter().all(|s| (s - 2000).abs() <= 1), "averaged");

        let out_path = dir.path().join("out.wav");
        let mut out: Box<dyn AudioOutput> =
            Box::new(WavOutput::create(&out_path).expect("creates"));
        out.write_frame(&[7; FRAME_SAMPLES]).expect("writes");
        out.finish().expect("finishes");
        assert_eq!(
            read_wav_mono_48k(&out_path).expect("reads"),
            vec![7; FRAME_SAMPLES]
        );
    }

    #[test]
    fn a_pcm_input_plays_once_then_reports_its_end() {
        let mut input = PcmInput::new(vec![5; FRAME_SAMPLES + 10]);
        let mut frame = [0i16; FRAME_SAMPLES];
        assert!(input.read_frame(&mut frame));
        assert!(input.read_frame(&mut frame));
        assert_eq!(&frame[..10], &[5; 10]);
        assert!(frame[10..].iter().all(|&s| s == 0));
        assert!(!input.read_frame(&mut frame));
    }

    #[test]
    fn a_missing_wav_file_is_a_clear_error() {
        let err = read_wav_mono_48k(Path::new("/nonexistent/in.wav")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/in.wav"), "{err}");
    }
}
