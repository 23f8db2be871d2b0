//! `mandelbrot`: renders the Mandelbrot set to an 8-bit grayscale PNG.
//!
//! Pieces are horizontal bands of rows; a worker returns the band's raw
//! pixels and the submitter stitches them and encodes the PNG, so only
//! integers and bytes cross the wire (the `f64` maths stays inside `run`).
//! Each pixel depends only on its own coordinates, so the image is the same
//! byte for byte however it is cut.

use super::{check_pieces, equal_part, Rendered, ResultFile, MAX_PIECE_BYTES};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest `--width` and `--height`.
pub const MAX_SIDE: u32 = 8192;

/// Largest `--max-iter`: beyond it a band could run for hours.
pub const MAX_ITER_LIMIT: u32 = 1_000_000;

/// The colour of points in the set; escaping points are brighter the faster
/// they escape, and never this colour.
pub const IN_SET: u8 = 0;

/// The part of the complex plane the image shows.
const X_MIN: f64 = -2.5;
const X_MAX: f64 = 1.0;
const Y_MIN: f64 = -1.25;
const Y_MAX: f64 = 1.25;

/// The `mandelbrot` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mandelbrot;

/// A `mandelbrot` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandelbrotInput {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Iterations after which a point counts as in the set.
    pub max_iter: u32,
    /// Bands the image is cut into (fewer if it has fewer rows).
    pub pieces: u32,
    /// Where [`render`] writes the PNG (`None` for a job given to a node's
    /// service, which keeps the PNG in its store).
    pub out: Option<PathBuf>,
}

/// One piece: the rows `[row_start, row_end)` of a `width` × `height` image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandelbrotPiece {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels (to place the rows in the plane).
    pub height: u32,
    /// Iterations after which a point counts as in the set.
    pub max_iter: u32,
    /// First row of the band.
    pub row_start: u32,
    /// End of the band (excluded).
    pub row_end: u32,
}

/// One band's pixels, row after row, one gray byte each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandelbrotBand {
    /// `(row_end - row_start) * width` bytes.
    #[serde(with = "serde_bytes")]
    pub pixels: Vec<u8>,
}

/// The rendered image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandelbrotImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG file's bytes (8-bit grayscale).
    pub png: Vec<u8>,
}

/// Render the Mandelbrot set to a grayscale PNG.
#[derive(clap::Args, Debug, Clone)]
pub struct MandelbrotArgs {
    /// Image width in pixels (1 to 8192).
    #[arg(long)]
    pub width: u32,
    /// Image height in pixels (1 to 8192).
    #[arg(long)]
    pub height: u32,
    /// PNG file to write (created or overwritten; checked before the job
    /// starts). Required by `meshwork run`; a node given the job with
    /// `meshwork submit` keeps the PNG: `meshwork result ID -o FILE`.
    #[arg(long, value_parser = crate::cli::checks::writable_file)]
    pub out: Option<PathBuf>,
    /// Number of bands of rows the image is cut into.
    #[arg(long, default_value_t = 16)]
    pub pieces: u32,
    /// Iterations after which a point counts as in the set (1 to 1000000).
    #[arg(long, default_value_t = 256)]
    pub max_iter: u32,
}

impl MandelbrotArgs {
    /// The job these arguments ask for, or why they are not acceptable.
    pub fn input(&self) -> anyhow::Result<MandelbrotInput> {
        let input = MandelbrotInput {
            width: self.width,
            height: self.height,
            max_iter: self.max_iter,
            pieces: self.pieces,
            out: self.out.clone(),
        };
        validate(&input).map_err(anyhow::Error::msg)?;
        Ok(input)
    }

    /// [`Self::input`] for `meshwork run`, which writes the PNG: `--out`
    /// is required there.
    pub fn input_for_run(&self) -> anyhow::Result<MandelbrotInput> {
        anyhow::ensure!(self.out.is_some(), "--out FILE is required: where to write the PNG");
        self.input()
    }
}

/// The checks of [`MandelbrotArgs::input`] and [`Mandelbrot::split`], in the
/// CLI's words.
fn validate(input: &MandelbrotInput) -> Result<(), String> {
    check_pieces(input.pieces)?;
    check_image(input.width, input.height, input.max_iter)?;
    let rows_per_band = (MAX_PIECE_BYTES / input.width as usize) as u32;
    let needed = input.height.div_ceil(rows_per_band);
    if input.pieces < needed {
        return Err(format!(
            "--pieces must be at least {needed} for a {}x{} image (a band carries at most {MAX_PIECE_BYTES} bytes)",
            input.width, input.height
        ));
    }
    Ok(())
}

/// The limits on the image, shared by the submitter's and the worker's checks.
fn check_image(width: u32, height: u32, max_iter: u32) -> Result<(), String> {
    if !(1..=MAX_SIDE).contains(&width) {
        return Err(format!("--width must be between 1 and {MAX_SIDE}"));
    }
    if !(1..=MAX_SIDE).contains(&height) {
        return Err(format!("--height must be between 1 and {MAX_SIDE}"));
    }
    if !(1..=MAX_ITER_LIMIT).contains(&max_iter) {
        return Err(format!("--max-iter must be between 1 and {MAX_ITER_LIMIT}"));
    }
    Ok(())
}

/// Writes the PNG to `--out` when there is one, and says so; the PNG is
/// the result's file either way.
pub fn render(input: &MandelbrotInput, image: &MandelbrotImage) -> anyhow::Result<Rendered> {
    let (width, height, bytes) = (image.width, image.height, image.png.len());
    let mut json = serde_json::json!({ "task": Mandelbrot::NAME, "width": width, "height": height, "bytes": bytes });
    let text = match &input.out {
        Some(path) => {
            let out = path.display();
            std::fs::write(path, &image.png).map_err(|e| anyhow::anyhow!("cannot write {out}: {e}"))?;
            json["out"] = out.to_string().into();
            format!("wrote {out} ({width}x{height}, {bytes} bytes)")
        }
        None => format!("a {width}x{height} PNG ({bytes} bytes)"),
    };
    let file = ResultFile { name: "mandelbrot.png", content_type: "image/png", bytes: image.png.clone() };
    Ok(Rendered { text, json, file: Some(file) })
}

impl Task for Mandelbrot {
    const NAME: &'static str = "mandelbrot";
    type Input = MandelbrotInput;
    type Piece = MandelbrotPiece;
    type Output = MandelbrotBand;
    type Result = MandelbrotImage;

    /// Cuts the image into bands of nearly equal height, at most one per row.
    fn split(&self, input: &MandelbrotInput) -> Result<Vec<MandelbrotPiece>, TaskError> {
        validate(input).map_err(TaskError::Invalid)?;
        let n = input.pieces.min(input.height);
        let band = |i| {
            let (row_start, row_end) = equal_part(0, input.height.into(), i, n.into());
            MandelbrotPiece {
                width: input.width,
                height: input.height,
                max_iter: input.max_iter,
                row_start: row_start as u32,
                row_end: row_end as u32,
            }
        };
        Ok((0..u64::from(n)).map(band).collect())
    }

    fn run(&self, piece: MandelbrotPiece, cancel: &CancelFlag) -> Result<MandelbrotBand, TaskError> {
        check_piece(&piece).map_err(TaskError::Failed)?;
        let mut pixels = Vec::with_capacity(band_len(&piece));
        for row in piece.row_start..piece.row_end {
            cancel.check()?;
            pixels.extend((0..piece.width).map(|col| pixel(&piece, col, row)));
        }
        Ok(MandelbrotBand { pixels })
    }

    /// Stitches the bands, checking each has the size its piece asked for,
    /// and encodes the PNG.
    fn merge(&self, input: &MandelbrotInput, bands: Vec<MandelbrotBand>) -> Result<MandelbrotImage, TaskError> {
        let pieces = self.split(input)?;
        if bands.len() != pieces.len() {
            return Err(TaskError::Failed(format!("expected {} bands, got {}", pieces.len(), bands.len())));
        }
        let mut pixels = Vec::with_capacity(input.width as usize * input.height as usize);
        for (piece, band) in pieces.iter().zip(bands) {
            if band.pixels.len() != band_len(piece) {
                return Err(TaskError::Failed(format!(
                    "band of rows {}..{} has {} pixels, expected {}",
                    piece.row_start,
                    piece.row_end,
                    band.pixels.len(),
                    band_len(piece)
                )));
            }
            pixels.extend_from_slice(&band.pixels);
        }
        let png = encode_png(input.width, input.height, &pixels)
            .map_err(|e| TaskError::Failed(format!("cannot encode the PNG: {e}")))?;
        Ok(MandelbrotImage { width: input.width, height: input.height, png })
    }
}

/// A worker's check of a piece from a peer, so a malformed one cannot make
/// it allocate or loop without bound.
fn check_piece(piece: &MandelbrotPiece) -> Result<(), String> {
    check_image(piece.width, piece.height, piece.max_iter)?;
    if piece.row_start >= piece.row_end || piece.row_end > piece.height {
        return Err(format!(
            "rows {}..{} are not a band of a {}-row image",
            piece.row_start, piece.row_end, piece.height
        ));
    }
    if band_len(piece) > MAX_PIECE_BYTES {
        return Err(format!("a band of {} bytes exceeds {MAX_PIECE_BYTES}", band_len(piece)));
    }
    Ok(())
}

/// Pixels in a band.
fn band_len(piece: &MandelbrotPiece) -> usize {
    (piece.row_end - piece.row_start) as usize * piece.width as usize
}

/// The gray level of pixel (`col`, `row`), sampled at the pixel's centre.
fn pixel(piece: &MandelbrotPiece, col: u32, row: u32) -> u8 {
    let x = X_MIN + (f64::from(col) + 0.5) * (X_MAX - X_MIN) / f64::from(piece.width);
    let y = Y_MAX - (f64::from(row) + 0.5) * (Y_MAX - Y_MIN) / f64::from(piece.height);
    shade(x, y, piece.max_iter)
}

/// [`IN_SET`] if `c = x + iy` stays within |z| ≤ 2 for `max_iter` iterations
/// of `z ← z² + c` from `z = 0`, else a gray from 255 (out after the first
/// iteration) down to 1.
fn shade(x: f64, y: f64, max_iter: u32) -> u8 {
    let (mut zx, mut zy) = (0.0f64, 0.0f64);
    for i in 0..max_iter {
        (zx, zy) = (zx * zx - zy * zy + x, 2.0 * zx * zy + y);
        if zx * zx + zy * zy > 4.0 {
            return (255 - u64::from(i) * 255 / u64::from(max_iter)) as u8;
        }
    }
    IN_SET
}

/// Encodes 8-bit grayscale pixels, row after row, as a PNG.
fn encode_png(width: u32, height: u32, pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    fn input(width: u32, height: u32, pieces: u32) -> MandelbrotInput {
        MandelbrotInput { width, height, max_iter: 100, pieces, out: None }
    }

    /// Decodes a PNG into (width, height, gray pixels).
    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(png);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        pixels.truncate(info.buffer_size());
        (info.width, info.height, pixels)
    }

    /// The pixel whose area holds the point (x, y).
    fn pixel_holding(pixels: &[u8], width: u32, height: u32, x: f64, y: f64) -> u8 {
        let col = ((x - X_MIN) / (X_MAX - X_MIN) * f64::from(width)) as usize;
        let row = ((Y_MAX - y) / (Y_MAX - Y_MIN) * f64::from(height)) as usize;
        pixels[row * width as usize + col]
    }

    #[test]
    fn piece_count_does_not_change_the_png() {
        let one = run_locally(&Mandelbrot, &input(70, 45, 1)).unwrap();
        let seven = run_locally(&Mandelbrot, &input(70, 45, 7)).unwrap();
        assert_eq!(one, seven);
    }

    #[test]
    fn the_png_decodes_to_the_asked_size_with_the_set_where_it_belongs() {
        let (width, height) = (140, 100);
        let image = run_locally(&Mandelbrot, &input(width, height, 16)).unwrap();
        assert_eq!((image.width, image.height), (width, height));
        let (w, h, pixels) = decode(&image.png);
        assert_eq!((w, h), (width, height));
        assert_eq!(pixels.len(), (width * height) as usize);
        assert_eq!(pixel_holding(&pixels, w, h, 0.0, 0.0), IN_SET);
        assert_eq!(pixel_holding(&pixels, w, h, -1.0, 0.0), IN_SET);
        // Far outside the set (|c| > 2): escapes after one iteration.
        assert_ne!(pixel_holding(&pixels, w, h, -2.4, 1.2), IN_SET);
        assert_ne!(pixel_holding(&pixels, w, h, 0.9, -1.2), IN_SET);
    }

    #[test]
    fn shades_separate_the_set_from_escaping_points() {
        assert_eq!(shade(0.0, 0.0, 50), IN_SET);
        assert_eq!(shade(-2.0, 0.0, 50), IN_SET); // the set's leftmost point stays at z = 2
        assert_eq!(shade(3.0, 0.0, 50), 255); // |z| = 3 after the first iteration
        assert_eq!(shade(1.0, 0.0, 50), 245); // z: 1, 2, 5: out at the third iteration, 255 - 2 * 255 / 50
        assert_eq!(shade(0.25, 0.0, 1000), IN_SET); // the cusp: z creeps up to 1/2
        let (slow, fast) = (shade(0.26, 0.0, 1000), shade(0.5, 0.0, 1000));
        assert!(IN_SET < slow && slow < fast, "slow {slow}, fast {fast}");
    }

    #[test]
    fn bands_tile_the_image() {
        let pieces = Mandelbrot.split(&input(10, 10, 3)).unwrap();
        let rows: Vec<_> = pieces.iter().map(|p| (p.row_start, p.row_end)).collect();
        assert_eq!(rows, vec![(0, 3), (3, 6), (6, 10)]);
        assert_eq!(Mandelbrot.split(&input(10, 2, 16)).unwrap().len(), 2);
    }

    #[test]
    fn a_band_of_the_wrong_size_fails_the_merge() {
        let bands = vec![MandelbrotBand { pixels: vec![0; 10] }, MandelbrotBand { pixels: vec![0; 9] }];
        assert!(matches!(Mandelbrot.merge(&input(10, 2, 2), bands), Err(TaskError::Failed(_))));
    }

    #[test]
    fn a_malformed_piece_is_refused() {
        let piece = MandelbrotPiece { width: 10, height: 10, max_iter: 10, row_start: 5, row_end: 11 };
        assert!(matches!(Mandelbrot.run(piece, &CancelFlag::new()), Err(TaskError::Failed(_))));
        let huge = MandelbrotPiece { width: u32::MAX, ..piece };
        assert!(matches!(Mandelbrot.run(huge, &CancelFlag::new()), Err(TaskError::Failed(_))));
    }

    #[test]
    fn a_cancelled_piece_stops() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        let piece = MandelbrotPiece { width: 10, height: 10, max_iter: 10, row_start: 0, row_end: 10 };
        assert_eq!(Mandelbrot.run(piece, &cancel), Err(TaskError::Cancelled));
    }

    #[test]
    fn arguments_are_checked() {
        let args = |width, height, pieces| {
            let args = MandelbrotArgs { width, height, out: Some("x.png".into()), pieces, max_iter: 256 };
            args.input().map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(args(0, 10, 1), Err("--width must be between 1 and 8192".to_string()));
        assert_eq!(args(10, 8193, 1), Err("--height must be between 1 and 8192".to_string()));
        assert_eq!(args(10, 10, 0), Err("--pieces must be between 1 and 1000000".to_string()));
        assert!(args(8192, 8192, 4).unwrap_err().starts_with("--pieces must be at least 8 for a 8192x8192 image"));
        assert_eq!(args(8192, 8192, 8), Ok(()));
    }

    #[test]
    fn render_writes_the_file_or_names_it() {
        let dir = std::env::temp_dir();
        let out = dir.join(format!("meshwork-mandelbrot-test-{}.png", std::process::id()));
        let image = MandelbrotImage { width: 2, height: 1, png: b"not really a png".to_vec() };
        let rendered = render(&MandelbrotInput { out: Some(out.clone()), ..input(2, 1, 1) }, &image).unwrap();
        let written = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(written, image.png);
        assert_eq!(rendered.text, format!("wrote {} (2x1, 16 bytes)", out.display()));
        let missing = dir.join("meshwork-no-such-dir").join("x.png");
        let err = render(&MandelbrotInput { out: Some(missing.clone()), ..input(2, 1, 1) }, &image).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot write {}: ", missing.display())), "{err}");
        let kept = render(&input(2, 1, 1), &image).unwrap();
        assert_eq!(kept.text, "a 2x1 PNG (16 bytes)", "without --out nothing is written");
        assert_eq!(kept.file.map(|f| f.bytes), Some(image.png), "the PNG is the result's file");
    }
}
