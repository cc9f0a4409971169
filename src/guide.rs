//! Train your own model: from your data to a checkpoint and back to predictions.
//!
//! Every step below is compiled and run as this page's test (`cargo test --doc`).
//!
//! # 1. Data
//!
//! A [`Dataset`](crate::data::Dataset) holds samples as `f32` features with a sample shape and
//! class labels. Build one from your own vectors (readers exist for CSV, IDX — MNIST,
//! Fashion-MNIST — and CIFAR-10 binary files in [`crate::data`]):
//!
//! ```
//! use shaped::data::{ChannelNorm, Dataset};
//! # fn main() -> shaped::Result<()> {
//! // 200 two-channel 6×6 "images": class 1 when the first channel is brighter.
//! let (n, dims) = (200, [2, 6, 6]);
//! let mut x = Vec::with_capacity(n * 72);
//! let mut y = Vec::with_capacity(n);
//! for i in 0..n {
//!     let class = i % 2;
//!     for j in 0..72 {
//!         let bright = (j < 36) == (class == 1);
//!         x.push(if bright { 1.0 } else { 0.2 } + ((i * 31 + j * 17) % 13) as f32 * 0.01);
//!     }
//!     y.push(class);
//! }
//! let data = Dataset::new(x, y, &dims, 2)?;                // checks every length and label
//! let (mut train, mut val) = data.split_at(160);           // or `holdout`, or your own split
//! let norm = ChannelNorm::fit(&train)?;                    // per-channel mean and deviation
//! norm.apply(&mut train)?;
//! norm.apply(&mut val)?;
//! # Ok(())
//! # }
//! ```
//!
//! # 2. The model
//!
//! A model is a struct of layers. `#[derive(Sequential)]` chains them and checks, when the crate
//! is checked, that every layer fits the one before it — a wrong width is an error at that field,
//! with both sizes:
//!
//! ```
//! use shaped::prelude::*;
//!
//! #[derive(Sequential)]
//! #[sequential(input = (2, 6, 6))]
//! struct Net {
//!     conv: Conv2d<2, 4, 3, 1, 1>, // 2 → 4 channels, 3×3, stride 1, padding 1: 4×6×6
//!     relu: ReLU,
//!     pool: MaxPool2d<2>,          // 4×3×3
//!     flat: Flatten,               // 36
//!     fc: Linear<36, 2>,
//! }
//!
//! let net = Net::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
//! println!("{net}"); // field, layer, output shape and parameters of each layer
//! ```
//!
//! # 3. Training, evaluation, checkpoints and inference
//!
//! [`Solver`](crate::solver::Solver) runs the epochs (shuffled mini-batches, the update rule,
//! evaluation, best-epoch restore, checkpoints); [`metrics`](crate::metrics) measures more than
//! accuracy; [`io`](crate::io) saves and loads parameters (also in PyTorch's `state_dict` layout).
//!
//! ```
//! # use shaped::data::Dataset;
//! # use shaped::prelude::*;
//! # #[derive(Sequential)]
//! # #[sequential(input = (2, 6, 6))]
//! # struct Net { conv: Conv2d<2, 4, 3, 1, 1>, relu: ReLU, pool: MaxPool2d<2>, flat: Flatten, fc: Linear<36, 2> }
//! # fn main() -> shaped::Result<()> {
//! # let (n, mut x, mut y) = (200, Vec::new(), Vec::new());
//! # for i in 0..n { let c = i % 2; for j in 0..72 { x.push(if (j < 36) == (c == 1) { 1.0 } else { 0.2 }); } y.push(c); }
//! # let (train, val) = Dataset::new(x, y, &[2, 6, 6], 2)?.split_at(160);
//! // Solver::new() is Adam at lr 1e-3; the input shape comes from the model's type (no turbofish).
//! let mut net = Net::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
//! let history = Solver::new()
//!     .lr(1e-2)
//!     .batch_size(20)
//!     .epochs(5)
//!     .seed(1)
//!     .augment(Augment { crop_pad: 1, hflip: true }) // per batch, reproducible for the seed
//!     .train(&mut net, &SoftmaxCrossEntropy::<2>, &train, &val)?;
//! assert!(history.best_val_acc > 0.9);
//!
//! // Top-k accuracy and the confusion matrix (`shaped::plot::plot_confusion` draws it).
//! let eval = shaped::metrics::evaluate(&net, &val, 100, 1)?;
//! println!("{}", eval.confusion);
//!
//! // Save, load into a fresh model, predict a batch: a Tensor<(Dyn, Const<2>)> of scores,
//! // or probabilities, or classes (no loss object needed).
//! let path = std::env::temp_dir().join(format!("guide-{}.safetensors", std::process::id()));
//! shaped::io::save(&net, &path)?;
//! let mut back = Net::zeros();
//! shaped::io::load(&mut back, &path)?; // every name and shape checked; the model untouched on error
//! let (x, labels) = val.batch::<<Net as Model>::Input>(&[0, 1, 2, 3])?;
//! assert_eq!(back.predict(&x).as_slice(), net.predict(&x).as_slice());
//! let probabilities = back.predict_proba(&x);
//! let classes = back.predict_classes(&x);
//! # let _ = (labels, probabilities, classes);
//!
//! // One sample at a time, from an array, without allocating: sizes checked at build time.
//! let mut predictor = Predictor::new(&back);
//! let sample: [f32; 72] = val.sample(0).try_into().unwrap();
//! let scores: [f32; 2] = predictor.predict(&sample);
//! let class = predictor.predict_class(&sample);
//! # let _ = (scores, class);
//! # std::fs::remove_file(&path).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # 4. Going further
//!
//! - Layers: [`crate::layers`] (convolution, pooling, batch and layer norm, activations, dropout,
//!   [`Residual`](crate::layers::Residual) blocks); a derived struct is itself a layer, and can be
//!   generic over its sizes and element type.
//! - A debug build that trains at near release speed: see the README's
//!   `[profile.dev.package.shaped]` setting.
//! - Hand-written layers implement [`Module`](crate::Module) (parameters, a shape rule, the passes)
//!   and are checked against centred differences with [`gradcheck`](crate::gradcheck). A layer
//!   whose training passes treat every sample on its own and change nothing in it says so with
//!   `const PER_SAMPLE: bool = true`: models made only of such layers (and of the crate's batch
//!   norms and dropout, which meet across the shares where they need the whole batch:
//!   [`Module::IN_PARTS`](crate::Module::IN_PARTS)) train on several kernel threads one share of
//!   the batch per thread ([`TrainStep`](crate::step::TrainStep)).
