//! The model-level API of issue 18: the input inferred from the model (`Model`), single-sample
//! inference on arrays (`Predictor`), per-batch augmentation in the solver, modern defaults.

use shaped::data::{Augment, Dataset, synthetic};
use shaped::metrics::evaluate;
use shaped::models::{Cnn, CnnBn};
use shaped::prelude::*;
use shaped::solver::{mean_loss, predict};

#[path = "common/rescnn.rs"]
mod rescnn;
use rescnn::ResCnn;

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// `Predictor` on arrays gives exactly the batch forward pass's outputs, sample by sample, and
/// its argmax is `predict_classes`.
fn predictor_matches_forward<M: Model, const N: usize, const K: usize>(model: &M, data: &Dataset) {
    let idx: Vec<usize> = (0..6).collect();
    let (x, _) = data.batch::<M::Input>(&idx).unwrap();
    let y = model.predict(&x);
    let classes = model.predict_classes(&x);
    let mut p = Predictor::new(model);
    for (i, s) in x.as_slice().chunks_exact(N).enumerate() {
        let arr: [f32; N] = s.try_into().unwrap();
        let out: [f32; K] = p.predict(&arr);
        assert_eq!(&out[..], &y.as_slice()[i * K..(i + 1) * K], "sample {i}: the predictor differs from forward");
        assert_eq!(p.predict_class(&arr), classes[i]);
        assert_eq!(p.last_output(), &out[..]);
    }
}

#[test]
fn predictor_equals_batch_forward() {
    let img = synthetic::random_images(3, 20, &[1, 28, 28], 10);
    let mut bn = CnnBn::init(&mut rng(1), Init::He);
    // Running statistics away from their initial values, so inference mode is exercised.
    Solver::new().epochs(1).batch_size(10).train(&mut bn, &SoftmaxCrossEntropy::<10>, &img, &img).unwrap();
    predictor_matches_forward::<CnnBn, 784, 10>(&bn, &img);
    predictor_matches_forward::<Cnn, 784, 10>(&Cnn::init(&mut rng(2), Init::He), &img);
    let rgb = synthetic::random_images(4, 20, &[3, 16, 16], 5);
    let mut res = ResCnn::init(&mut rng(3), Init::He);
    Solver::new().epochs(1).batch_size(10).train(&mut res, &SoftmaxCrossEntropy::<5>, &rgb, &rgb).unwrap();
    predictor_matches_forward::<ResCnn, 768, 5>(&res, &rgb);
}

#[test]
fn model_input_is_inferred() {
    // No turbofish anywhere: train, accuracy, predict, mean_loss, evaluate.
    let data = synthetic::random_images(5, 60, &[3, 16, 16], 5);
    let mut model = ResCnn::init(&mut rng(5), Init::He);
    let loss = SoftmaxCrossEntropy::<5>;
    let h = Solver::new().epochs(2).batch_size(20).train(&mut model, &loss, &data, &data).unwrap();
    assert_eq!(h.lr.len(), 2);
    let acc = accuracy(&model, &loss, &data, 16).unwrap();
    let pred = predict(&model, &loss, &data, 16).unwrap();
    let eval = evaluate(&model, &data, 16, 2).unwrap();
    let right = pred.iter().zip(data.labels()).filter(|(p, l)| p == l).count() as f64 / data.len() as f64;
    assert_eq!(acc, right);
    assert_eq!(eval.accuracy, acc);
    assert!(eval.top_k >= eval.accuracy);
    assert!(mean_loss(&model, &loss, &data, 16).unwrap().is_finite());
    // A wrongly sized data set is refused with the model's input in the message.
    let wrong = synthetic::random_images(5, 10, &[1, 28, 28], 5);
    let err = accuracy(&model, &loss, &wrong, 16).unwrap_err().to_string();
    assert!(err.contains("768") || err.contains("3×16×16"), "{err}");
    // A lone Linear is a Model too: logistic regression without naming its input.
    let bin = synthetic::binary20(1, 100);
    let mut lin = Linear::<20, 1>::init(&mut rng(0), Init::default());
    Solver::new().epochs(1).train(&mut lin, &Logistic, &bin, &bin).unwrap();
    assert!(accuracy(&lin, &Logistic, &bin, 50).unwrap() > 0.0);
}

#[test]
fn modern_defaults() {
    assert_eq!(Init::default(), Init::He);
    // Solver::new() is Adam at 1e-3: its first step moves every weight of a fresh model by about
    // lr (Adam's first update is lr · sign(g) up to ε), which plain SGD at 1e-2 would not do.
    let data = synthetic::random_images(6, 20, &[784], 10);
    let mut m = Linear::<784, 10>::init(&mut rng(6), Init::He);
    let before = m.weight.as_slice().to_vec();
    Solver::new().epochs(1).batch_size(20).train(&mut m, &SoftmaxCrossEntropy::<10>, &data, &data).unwrap();
    let moved: Vec<f32> = m.weight.as_slice().iter().zip(&before).map(|(a, b)| (a - b).abs()).collect();
    let big = moved.iter().filter(|d| (**d - 1e-3).abs() < 1e-4).count();
    assert!(big * 10 > moved.len() * 9, "{big} of {} weights moved by about 1e-3", moved.len());
}

/// Training losses of CnnBn on images with this augmentation and seed.
fn losses(aug: Option<Augment>, seed: u64) -> Vec<f32> {
    let img = synthetic::random_images(7, 60, &[1, 28, 28], 10);
    let mut m = CnnBn::init(&mut rng(7), Init::He);
    let mut s = Solver::new().epochs(2).batch_size(20).seed(seed);
    if let Some(a) = aug {
        s = s.augment(a);
    }
    s.train(&mut m, &SoftmaxCrossEntropy::<10>, &img, &img).unwrap().loss
}

#[test]
fn solver_augments_per_batch_deterministically() {
    let aug = Augment { crop_pad: 3, hflip: true };
    let (a, b) = (losses(Some(aug), 1), losses(Some(aug), 1));
    assert_eq!(a, b, "the same seed gives the same augmented run");
    let plain = losses(None, 1);
    assert_ne!(a, plain, "augmentation changes the batches");
    assert_ne!(a, losses(Some(aug), 2), "another seed draws other crops");
    // Flips alone and crops alone differ from each other.
    let flips = losses(Some(Augment { crop_pad: 0, hflip: true }), 1);
    let crops = losses(Some(Augment { crop_pad: 3, hflip: false }), 1);
    assert_ne!(flips, crops);
    assert_ne!(flips, plain);
    // The no-op augmentation is no augmentation.
    assert_eq!(losses(Some(Augment::default()), 1), plain);
}

#[test]
fn augmentation_that_cannot_apply_is_refused_before_training() {
    let flat = synthetic::random_images(8, 20, &[784], 10);
    let mut m = shaped::models::Mlp::init(&mut rng(8), Init::He);
    let err = Solver::new()
        .augment(Augment { crop_pad: 2, hflip: true })
        .train(&mut m, &SoftmaxCrossEntropy::<10>, &flat, &flat)
        .unwrap_err()
        .to_string();
    assert!(err.contains("C×H×W"), "{err}");
    let img = synthetic::random_images(8, 20, &[1, 28, 28], 10);
    let mut c = Cnn::init(&mut rng(8), Init::He);
    let err = Solver::new()
        .augment(Augment { crop_pad: 28, hflip: false })
        .train(&mut c, &SoftmaxCrossEntropy::<10>, &img, &img)
        .unwrap_err()
        .to_string();
    assert!(err.contains("crop padding 28") && err.contains("28×28"), "{err}");
}

/// A NaN in a sample's input reaches that sample's scores, as in PyTorch (ReLU passes a NaN, a
/// max-pooling window with a NaN pools to NaN), instead of vanishing into finite scores; the
/// other samples' scores are untouched. Through the spec's CNN (convolution → ReLU → pooling,
/// fused) and the batch-norm CNN (batch norm → ReLU → pooling fused), whatever the NaN's place.
#[test]
fn a_nan_input_gives_nan_scores() {
    let data = synthetic::random_images(3, 6, &[1, 28, 28], 10);
    let (cnn, cnn_bn) = (Cnn::init(&mut rng(1), Init::He), CnnBn::init(&mut rng(2), Init::He));
    for at in [0, 1, 29, 300, 783] {
        let (mut x, _) = data.batch::<<Cnn as Model>::Input>(&[0, 1, 2]).unwrap();
        x.as_mut_slice()[784 + at] = f32::NAN; // sample 1
        for y in [cnn.predict(&x), cnn_bn.predict(&x)] {
            let rows: Vec<&[f32]> = y.as_slice().chunks_exact(10).collect();
            assert!(rows[1].iter().all(|v| v.is_nan()), "NaN at {at}: {:?}", rows[1]);
            assert!(rows[0].iter().chain(rows[2]).all(|v| v.is_finite()), "NaN at {at}: other samples");
        }
    }
    // A flat model: Linear → ReLU → Linear.
    #[derive(Sequential)]
    #[sequential(input = (4,))]
    struct Flat {
        fc1: Linear<4, 8>,
        act: ReLU,
        fc2: Linear<8, 3>,
    }
    let m = Flat::init(&mut rng(3), Init::He);
    let x = Tensor::<(Dyn, Const<4>)>::from_vec(vec![f32::NAN; 4]).unwrap();
    assert!(m.predict(&x).as_slice().iter().all(|v| v.is_nan()));
}

/// Max pooling with a NaN in a window: the window pools to its last NaN (row-major), on the
/// 2×2 path (vector lanes and scalar tail) and the general path, with and without ReLU before.
#[test]
fn max_pooling_keeps_nan() {
    use shaped::kernels::pool::{self, PoolDims};
    for (p, stride, w) in [(2, 2, 40), (2, 2, 6), (3, 2, 21)] {
        let d = PoolDims { planes: 2, h: 6, w, p, stride, pad: 0 };
        let mut x: Vec<f32> = (0..d.planes * d.h * w).map(|i| (i % 17) as f32 - 8.0).collect();
        let nan_at = [w + 1, 3 * w + 7, 6 * w + 2 * w + 3]; // rows 1, 3 of plane 0; row 2 of plane 1
        for &i in &nan_at {
            x[i] = f32::NAN;
        }
        let q = d.planes * d.oh() * d.ow();
        for relu in [false, true] {
            let (mut y, mut a) = (vec![0.0f32; q], vec![0u32; q]);
            if relu {
                pool::relu_max_forward(&d, &x, &mut y, Some(&mut a));
            } else {
                pool::max_forward(&d, &x, &mut y, Some(&mut a));
            }
            for (o, (&v, &k)) in y.iter().zip(&a).enumerate() {
                let (pl, oy, ox) = (o / (d.oh() * d.ow()), o / d.ow() % d.oh(), o % d.ow());
                let covered: Vec<usize> = (oy * stride..oy * stride + p)
                    .flat_map(|iy| (ox * stride..ox * stride + p).map(move |ix| iy * w + ix))
                    .collect();
                let nan = covered.iter().rev().find(|&&i| x[pl * d.h * w + i].is_nan());
                match nan {
                    Some(&i) => assert!(v.is_nan() && k as usize == i, "{d:?} relu {relu}: window {o}"),
                    None => assert!(!v.is_nan(), "{d:?} relu {relu}: window {o}"),
                }
            }
        }
    }
}
