//! Per-channel normalisation and batch augmentation (random crop with padding, horizontal flip).

use shaped::data::{Augment, ChannelNorm, Dataset};

fn images(n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * c * h * w).map(|i| (i % 97) as f32 + 1.0).collect()
}

#[test]
fn channel_norm_gives_zero_mean_unit_variance_per_channel() {
    let (c, h, w) = (3, 4, 5);
    let mut x = images(6, c, h, w);
    for (i, v) in x.iter_mut().enumerate() {
        let ch = (i / (h * w)) % c;
        *v = *v * (ch as f32 + 1.0) + 10.0 * ch as f32; // distinct statistics per channel
    }
    let mut data = Dataset::new(x, vec![0; 6], &[c, h, w], 1).unwrap();
    let norm = ChannelNorm::fit(&data).unwrap();
    assert_eq!(norm.mean.len(), 3);
    assert!(norm.mean[2] > norm.mean[0] && norm.std[2] > norm.std[0]);
    norm.apply(&mut data).unwrap();
    let after = ChannelNorm::fit(&data).unwrap();
    for ch in 0..c {
        assert!(after.mean[ch].abs() < 1e-4, "{after:?}");
        assert!((after.std[ch] - 1.0).abs() < 1e-4, "{after:?}");
    }
    // statistics of 3 channels do not apply to 1-channel data
    let mut flat = Dataset::new(vec![1.0; 8], vec![0; 2], &[4], 1).unwrap();
    assert!(norm.apply(&mut flat).unwrap_err().to_string().contains("3 channels"));
    assert!(ChannelNorm::fit(&Dataset::new(vec![], vec![], &[4], 1).unwrap()).is_err());
    // Statistics written by hand are checked before they touch the data.
    let mut img = Dataset::new(images(2, 2, 2, 2), vec![0; 2], &[2, 2, 2], 1).unwrap();
    let before = img.features().to_vec();
    for (mean, std, says) in [
        (vec![0.0, f32::NAN], vec![1.0, 1.0], "channel 1"),
        (vec![0.0, 0.0], vec![1.0, 0.0], "deviation 0"),
        (vec![0.0, 0.0], vec![-1.0, 1.0], "channel 0"),
        (vec![0.0, 0.0], vec![1.0, f32::INFINITY], "channel 1"),
        (vec![0.0, 0.0], vec![1.0], "2 means but 1 deviations"),
    ] {
        let err = ChannelNorm { mean, std }.apply(&mut img).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
        assert_eq!(img.features(), &before[..], "the data is untouched");
    }
}

/// The image `img` shifted by `(dy, dx)` (zeros filling in), then mirrored when `flip`.
fn shifted(img: &[f32], c: usize, h: usize, w: usize, dy: isize, dx: isize, flip: bool) -> Vec<f32> {
    let mut out = vec![0.0; img.len()];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let xs = if flip { w - 1 - x } else { x };
                let (sy, sx) = (y as isize + dy, xs as isize + dx);
                if (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx) {
                    out[(ch * h + y) * w + x] = img[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
    out
}

#[test]
fn augment_is_a_shift_and_flip_within_range_and_deterministic() {
    let (n, c, h, w, pad) = (16, 2, 6, 7, 2);
    let orig = images(n, c, h, w);
    let aug = Augment { crop_pad: pad, hflip: true };
    let mut scratch = Vec::new();
    let mut a = orig.clone();
    aug.apply(&mut a, [c, h, w], 7, &mut scratch).unwrap();
    let mut seen_flip = false;
    let mut seen_shift = false;
    for (i, (got, img)) in a.chunks(c * h * w).zip(orig.chunks(c * h * w)).enumerate() {
        let mut found = None;
        for dy in -(pad as isize)..=pad as isize {
            for dx in -(pad as isize)..=pad as isize {
                for flip in [false, true] {
                    if found.is_none() && shifted(img, c, h, w, dy, dx, flip) == got {
                        found = Some((dy, dx, flip));
                    }
                }
            }
        }
        let (dy, dx, flip) = found.unwrap_or_else(|| panic!("image {i} is no shift of its original"));
        seen_flip |= flip;
        seen_shift |= dy != 0 || dx != 0;
    }
    assert!(seen_flip && seen_shift, "16 images should see both a flip and a shift");
    // the same seed, the same batch; another seed, another one
    let mut b = orig.clone();
    aug.apply(&mut b, [c, h, w], 7, &mut scratch).unwrap();
    assert_eq!(a, b);
    let mut d = orig.clone();
    aug.apply(&mut d, [c, h, w], 8, &mut scratch).unwrap();
    assert_ne!(a, d);
    // no augmentation leaves the batch alone; bad sizes are errors
    let mut e = orig.clone();
    Augment::default().apply(&mut e, [c, h, w], 1, &mut scratch).unwrap();
    assert_eq!(e, orig);
    assert!(aug.apply(&mut e[..5], [c, h, w], 1, &mut scratch).is_err());
    assert!(Augment { crop_pad: 6, hflip: false }.apply(&mut e, [c, h, w], 1, &mut scratch).is_err());
}
