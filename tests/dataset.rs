//! Tests of `shaped::data`'s in-memory side: `Dataset` construction and validation, accessors,
//! subsets and splits, batch gathering, seeded shuffling and the synthetic sets. (The file readers
//! are `tests/data.rs`.)

use rand::SeedableRng;
use rand::rngs::StdRng;
use shaped::data::*;
use shaped::error::Error;

// ---------------------------------------------------------------------------------------------
// Dataset

fn small() -> Dataset {
    // 5 samples of 2x2; sample i's features are 10*i + 0..4, label i % 3.
    let x = (0..5).flat_map(|i| (0..4).map(move |j| (10 * i + j) as f32)).collect();
    Dataset::new(x, vec![0, 1, 2, 0, 1], &[2, 2], 3).unwrap()
}

#[test]
fn dataset_new_validates() {
    assert!(matches!(Dataset::new(vec![0.0; 7], vec![0, 1], &[4], 2), Err(Error::Shape(_))));
    assert!(matches!(Dataset::new(vec![0.0; 8], vec![0, 2], &[4], 2), Err(Error::Label(_))));
    assert!(matches!(Dataset::new(vec![0.0; 8], vec![0, 1], &[4], 0), Err(Error::Label(_))));
    assert!(matches!(Dataset::new(vec![], vec![], &[0], 2), Err(Error::Shape(_))));
    let mut x = vec![0.0; 8];
    x[5] = f32::NAN;
    match Dataset::new(x, vec![0, 1], &[4], 2) {
        Err(Error::Shape(m)) => assert!(m.contains("feature 1 of sample 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut x = vec![0.0; 8];
    x[0] = f32::INFINITY;
    assert!(matches!(Dataset::new(x, vec![0, 1], &[4], 2), Err(Error::Shape(_))));
    let e = Dataset::new(vec![], vec![], &[3], 2).unwrap();
    assert!(e.is_empty());
    assert_eq!(e.len(), 0);
}

#[test]
fn dataset_accessors_and_subsets() {
    let ds = small();
    assert_eq!(ds.len(), 5);
    assert!(!ds.is_empty());
    assert_eq!(ds.sample_len(), 4);
    assert_eq!(ds.sample_dims(), &[2, 2]);
    assert_eq!(ds.classes(), 3);
    assert_eq!(ds.features().len(), 20);
    assert_eq!(ds.labels(), &[0, 1, 2, 0, 1]);
    assert_eq!(ds.sample(3), &[30., 31., 32., 33.]);

    let s = ds.slice(1..3);
    assert_eq!(s.len(), 2);
    assert_eq!(s.sample(0), ds.sample(1));
    assert_eq!(s.labels(), &[1, 2]);
    assert_eq!(s.sample_dims(), &[2, 2]);
    assert!(ds.slice(2..2).is_empty());

    let g = ds.subset(&[4, 0, 4]);
    assert_eq!(g.labels(), &[1, 0, 1]);
    assert_eq!(g.sample(0), ds.sample(4));
    assert_eq!(g.sample(1), ds.sample(0));

    let (a, b) = ds.clone().split_at(2);
    assert_eq!(a, ds.slice(0..2));
    assert_eq!(b, ds.slice(2..5));
    let (a, b) = ds.clone().split_at(5);
    assert_eq!((a.len(), b.len()), (5, 0));

    let mut sc = ds.clone();
    sc.scale(0.5);
    assert_eq!(sc.sample(3), &[15., 15.5, 16., 16.5]);
    assert_eq!(sc.labels(), ds.labels());

    assert!(format!("{ds:?}").contains("len: 5"));
}

#[test]
fn holdout_takes_the_last_fraction() {
    let ds = random_images(1, 105, &[3], 4);
    let (train, val) = ds.clone().holdout(10);
    assert_eq!((train.len(), val.len()), (95, 10));
    assert_eq!(val, ds.slice(95..105));
    assert_eq!(train, ds.slice(0..95));
    let (train, val) = random_images(1, 60000, &[1], 10).holdout(10);
    assert_eq!((train.len(), val.len()), (54000, 6000));
    let (train, val) = ds.clone().holdout(1);
    assert_eq!((train.len(), val.len()), (0, 105));
    let (train, val) = ds.slice(0..5).holdout(10);
    assert_eq!((train.len(), val.len()), (5, 0));
}

#[test]
fn gather_into_copies_the_batch() {
    let ds = small();
    let order = [4, 1, 3, 0, 2];
    let mut x = vec![-1.0; 2 * 4];
    let mut y = vec![99; 2];
    ds.gather_into(&order[1..3], &mut x, &mut y);
    assert_eq!(x, [10., 11., 12., 13., 30., 31., 32., 33.]);
    assert_eq!(y, [1, 0]);
    // Buffers are reused, the whole epoch in batches of 2 then the remainder of 1.
    let mut seen = Vec::new();
    for chunk in order.chunks(2) {
        let (xb, yb) = (&mut x[..chunk.len() * 4], &mut y[..chunk.len()]);
        ds.gather_into(chunk, xb, yb);
        for (k, &i) in chunk.iter().enumerate() {
            assert_eq!(&xb[k * 4..k * 4 + 4], ds.sample(i));
            assert_eq!(yb[k], ds.labels()[i]);
        }
        seen.extend_from_slice(chunk);
    }
    assert_eq!(seen, order);
}

#[test]
fn batch_builds_the_input_tensor_or_says_what_does_not_fit() {
    use shaped::shape::{Const, Dyn};
    use shaped::tensor::Tensor;
    let ds = small();
    type Img = (Dyn, Const<1>, Const<2>, Const<2>);
    let (x, y): (Tensor<Img, f32>, _) = ds.batch(&[3, 0, 3]).unwrap();
    assert_eq!(x.batch_size(), 3);
    assert_eq!(x.as_slice(), [30., 31., 32., 33., 0., 1., 2., 3., 30., 31., 32., 33.]);
    assert_eq!(y, [0, 0, 0]);
    // Samples of 4 values against a model input of 5 per sample.
    match ds.batch::<(Dyn, Const<5>)>(&[0]) {
        Err(Error::Shape(m)) => assert!(m.contains("samples of 4 values") && m.contains("takes 5"), "{m}"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    match ds.batch::<(Dyn, Const<4>)>(&[1, 5]) {
        Err(Error::Shape(m)) => assert!(m.contains("index 5 at position 1") && m.contains("5 samples"), "{m}"),
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
#[should_panic]
fn gather_into_rejects_a_wrong_buffer() {
    let ds = small();
    let mut x = vec![0.0; 7];
    let mut y = vec![0; 2];
    ds.gather_into(&[0, 1], &mut x, &mut y);
}

#[test]
fn shuffle_order_is_a_seeded_permutation() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    shuffle_order(&mut a, 1000, &mut StdRng::seed_from_u64(42));
    shuffle_order(&mut b, 1000, &mut StdRng::seed_from_u64(42));
    assert_eq!(a, b);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_ne!(a, sorted, "a shuffle of 1000 is not the identity");
    shuffle_order(&mut b, 1000, &mut StdRng::seed_from_u64(43));
    assert_ne!(a, b);

    // Successive epochs from one rng differ, and the Vec's buffer is reused.
    let mut rng = StdRng::seed_from_u64(1);
    let mut order = Vec::with_capacity(1000);
    let ptr = order.as_ptr();
    shuffle_order(&mut order, 1000, &mut rng);
    let first = order.clone();
    shuffle_order(&mut order, 1000, &mut rng);
    assert_ne!(order, first);
    assert_eq!(order.as_ptr(), ptr);
    shuffle_order(&mut order, 10, &mut rng);
    assert_eq!(order.len(), 10);
    assert_eq!(order.as_ptr(), ptr);
    shuffle_order(&mut order, 0, &mut rng);
    assert!(order.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Synthetic sets

/// Full-batch gradient descent on the logistic loss; returns (weights, bias).
fn logistic_regression(ds: &Dataset, epochs: usize, lr: f64) -> (Vec<f64>, f64) {
    let d = ds.sample_len();
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    for _ in 0..epochs {
        let (mut gw, mut gb) = (vec![0.0; d], 0.0);
        for i in 0..ds.len() {
            let x = ds.sample(i);
            let z = b + x.iter().zip(&w).map(|(&xi, wi)| f64::from(xi) * wi).sum::<f64>();
            let e = 1.0 / (1.0 + (-z).exp()) - ds.labels()[i] as f64;
            gb += e;
            for (g, &xi) in gw.iter_mut().zip(x) {
                *g += e * f64::from(xi);
            }
        }
        let n = ds.len() as f64;
        for (wi, g) in w.iter_mut().zip(&gw) {
            *wi -= lr * g / n;
        }
        b -= lr * gb / n;
    }
    (w, b)
}

fn accuracy(ds: &Dataset, w: &[f64], b: f64) -> f64 {
    let right = (0..ds.len())
        .filter(|&i| {
            let z = b + ds.sample(i).iter().zip(w).map(|(&x, wi)| f64::from(x) * wi).sum::<f64>();
            (z > 0.0) == (ds.labels()[i] == 1)
        })
        .count();
    right as f64 / ds.len() as f64
}

#[test]
fn binary20_is_like_the_homework_set() {
    let ds = binary20(2024, 1000);
    assert_eq!(ds, binary20(2024, 1000), "deterministic from the seed");
    assert_ne!(ds, binary20(2025, 1000));
    assert_eq!(ds.len(), 1000);
    assert_eq!(ds.sample_dims(), &[20]);
    assert_eq!(ds.classes(), 2);
    assert!(ds.labels().iter().all(|&l| l < 2));

    let big = binary20(5, 20000);
    let ones = big.labels().iter().filter(|&&l| l == 1).count() as f64 / big.len() as f64;
    assert!((ones - 0.54).abs() < 0.02, "class 1 fraction {ones}");
    for (class, want) in [(0, 0.508), (1, 0.610)] {
        let xs: Vec<f64> = (0..big.len())
            .filter(|&i| big.labels()[i] == class)
            .flat_map(|i| big.sample(i).iter().map(|&v| f64::from(v)))
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let std = (xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((mean - want).abs() < 0.01, "class {class} mean {mean}");
        assert!((std - 0.288).abs() < 0.01, "class {class} std {std}");
    }

    // Roughly, not perfectly, linearly separable: logistic regression gets about 95%.
    let (train, _val, test) = binary20_splits(ds).unwrap();
    let (w, b) = logistic_regression(&train, 1500, 2.0);
    let (tr, te) = (accuracy(&train, &w, b), accuracy(&test, &w, b));
    assert!((0.9..0.995).contains(&tr), "train accuracy {tr}");
    assert!((0.88..0.99).contains(&te), "test accuracy {te}");
}

#[test]
fn random_images_for_benchmarks() {
    let ds = random_images(9, 50, &[3, 4, 5], 7);
    assert_eq!(ds.len(), 50);
    assert_eq!(ds.sample_dims(), &[3, 4, 5]);
    assert_eq!(ds.classes(), 7);
    assert!(ds.labels().iter().all(|&l| l < 7));
    assert!(ds.features().iter().all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0));
    assert!(ds.features().iter().any(|&v| v > 200.0));
    assert_eq!(ds, random_images(9, 50, &[3, 4, 5], 7));
    assert_ne!(ds, random_images(10, 50, &[3, 4, 5], 7));
    let mut seen = [false; 7];
    for &l in ds.labels() {
        seen[l] = true;
    }
    assert!(seen.iter().filter(|&&s| s).count() >= 5);
}
