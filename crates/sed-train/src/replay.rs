//! Replays: frames of one env in Melting Pot's look with a side panel (time, apples, the
//! tax rates per bracket and the objective), written as an animated GIF.
//!
//! Frames are palette-indexed ([`sed_core::render::PALETTE`]), so a GIF stores them as
//! they are, without colour quantisation.

use anyhow::{Result, bail};
use font8x8::UnicodeFonts;
use sed_core::config::Game;
use sed_core::engine::{Layout, State};
use sed_core::render::{CELL_PX, PALETTE, Pixels, colour, world_pixels};
use sed_core::welfare::Welfare;

/// Width of the side panel in characters (8 pixels each).
const PANEL_CHARS: usize = 16;

/// Draws `text` at pixel `(x, y)` in `c` with the 8 × 8 font; characters without a glyph
/// are left blank.
pub fn draw_text(px: &mut Pixels, x: usize, y: usize, text: &str, c: u8) {
    for (k, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    px.fill(x + 8 * k + col, y + row, 1, 1, c);
                }
            }
        }
    }
}

/// One frame of env `env`: the world, and beside it time, live apples, the rates per
/// bracket (a bar each) and the objective in force.
#[must_use]
pub fn frame(game: &Game, layout: &Layout, state: &State, env: usize, objective: &str) -> Pixels {
    let world = world_pixels(&game.map, layout, state, env);
    let brackets = &game.brackets;
    let lines = 7 + 2 * brackets.len();
    let panel_w = PANEL_CHARS * CELL_PX;
    let height = world.height.max(lines * 10 + 8);
    let mut px = Pixels::new(world.width + panel_w, height, colour::PANEL);
    px.blit(&world, 0, 0);
    let x = world.width + 4;
    let w = layout.apple_words;
    let live: u32 = state.apples[env * w..(env + 1) * w]
        .iter()
        .map(|a| a.count_ones())
        .sum();
    // Lines of text, each with the rate bar under it for a bracket.
    let mut lines: Vec<(String, Option<u32>)> = vec![
        (format!("t {}/{}", state.t[env], game.episode_len), None),
        (format!("apples {live}/{}", game.map.apples()), None),
        ("tax rates".into(), None),
    ];
    let rates = &state.rates[env * brackets.len()..(env + 1) * brackets.len()];
    for (b, &rate) in brackets.iter().zip(rates) {
        let range = if b.hi >= 1000 {
            format!("{}+", b.lo)
        } else {
            format!("{}-{}", b.lo, b.hi)
        };
        lines.push((format!("{range:<8}{:>3}%", rate * 10), Some(rate)));
    }
    lines.push(("objective".into(), None));
    // The objective's name, wrapped at the panel's width.
    let chars: Vec<char> = objective.chars().collect();
    for chunk in chars.chunks(PANEL_CHARS - 1).take(3) {
        lines.push((chunk.iter().collect(), None));
    }
    let mut y = 4;
    for (text, bar) in lines {
        draw_text(&mut px, x, y, &text, colour::TEXT);
        y += 10;
        if let Some(rate) = bar {
            let len = (panel_w - 12) * rate as usize / 10;
            px.fill(x, y - 1, len, 6, colour::BAR);
            y += 9;
        }
    }
    px
}

/// The objective as the side panel shows it: η for the paper's interpolated family.
#[must_use]
pub fn objective_label(welfare: &Welfare) -> String {
    match welfare {
        Welfare::Interpolated { eta } => format!("eta = {:.3}", eta.value()),
        other => other.to_string(),
    }
}

/// `frames` (all the same size) as an endlessly looping GIF, `delay_ms` per frame, each
/// pixel drawn `scale` × `scale`.
pub fn encode_gif(frames: &[Pixels], delay_ms: u32, scale: usize) -> Result<Vec<u8>> {
    let Some(first) = frames.first() else {
        bail!("no frames to write");
    };
    if scale == 0 || scale > 16 {
        bail!("--scale {scale} is outside 1..=16");
    }
    let (w, h) = (first.width * scale, first.height * scale);
    if w > u16::MAX as usize || h > u16::MAX as usize {
        bail!("a {w}x{h} frame exceeds the GIF limit of 65535 pixels a side; lower --scale");
    }
    let palette: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w as u16, h as u16, &palette)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        let mut buffer = vec![0u8; w * h];
        for f in frames {
            if (f.width, f.height) != (first.width, first.height) {
                bail!("frames differ in size");
            }
            for (y, row) in buffer.chunks_exact_mut(w).enumerate() {
                let src = &f.data[(y / scale) * f.width..][..f.width];
                for (x, p) in row.iter_mut().enumerate() {
                    *p = src[x / scale];
                }
            }
            let frame = gif::Frame {
                width: w as u16,
                height: h as u16,
                delay: (delay_ms / 10).clamp(1, u16::MAX as u32) as u16,
                buffer: std::borrow::Cow::Borrowed(&buffer),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sed_core::config::Config;
    use sed_core::engine::Engine;

    #[test]
    fn text_draws_the_font_glyphs() {
        let mut px = Pixels::new(16, 8, 0);
        draw_text(&mut px, 0, 0, "1-", 7);
        // '-' is a bar across rows 3 of its cell; '1' has its stem in column 2 or 3.
        let lit = |x: usize, y: usize| px.data[y * 16 + x] == 7;
        assert!((8..14).all(|x| lit(x, 3)), "{:?}", px.data);
        assert!(!lit(8, 0) && !lit(8, 6));
        assert!((1..6).all(|y| lit(2, y) || lit(3, y)));
    }

    #[test]
    fn a_gif_of_frames_decodes_to_the_same_pixels() {
        let game = Config::default().resolve().unwrap().game;
        let engine = Engine::new(game.clone(), 1);
        let (mut state, mut out) = (engine.new_state(), engine.new_outputs());
        engine.reset(&mut state, &mut out).unwrap();
        state.rates.copy_from_slice(&[3, 0, 10]);
        let a = frame(&game, &engine.layout(), &state, 0, "utilitarian");
        assert_eq!(a.width, 24 * 8 + PANEL_CHARS * 8);
        // The third bracket's bar is full, the second's empty.
        assert!(a.data.contains(&colour::BAR));
        state.pose[0] = state.pose[1];
        let b = frame(&game, &engine.layout(), &state, 0, "utilitarian");
        assert_ne!(a, b);
        let bytes = encode_gif(&[a.clone(), b.clone()], 100, 2).unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(bytes.as_slice()).unwrap();
        for original in [&a, &b] {
            let f = decoder.read_next_frame().unwrap().unwrap();
            assert_eq!(
                (f.width as usize, f.height as usize),
                (2 * a.width, 2 * a.height)
            );
            assert_eq!(f.delay, 10);
            for y in (0..a.height).step_by(7) {
                for x in (0..a.width).step_by(5) {
                    let got = f.buffer[(2 * y + 1) * 2 * a.width + 2 * x + 1];
                    assert_eq!(got, original.data[y * a.width + x], "pixel ({x}, {y})");
                }
            }
        }
        assert!(decoder.read_next_frame().unwrap().is_none());
        assert!(encode_gif(&[], 100, 1).is_err());
        assert!(
            encode_gif(&[a], 100, 0)
                .unwrap_err()
                .to_string()
                .contains("--scale 0")
        );
    }
}
