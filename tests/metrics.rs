//! Top-k accuracy, the confusion matrix (counts, recall, precision, its table and PNG) and
//! `metrics::evaluate` against `solver::accuracy`.

use shaped::data::Dataset;
use shaped::metrics::{ConfusionMatrix, evaluate, top_k_accuracy};
use shaped::prelude::*;
use shaped::solver::accuracy;

#[test]
fn top_k_counts_the_label_among_the_k_best() {
    // three samples of four classes; label ranks 0, 2 and 3
    let scores = [
        0.9, 0.1, 0.0, 0.0, // label 0: best
        0.1, 0.5, 0.3, 0.2, // label 3: third
        0.4, 0.3, 0.2, 0.1, // label 3: fourth
    ];
    let labels = [0, 3, 3];
    let got: Vec<f64> = (1..=4).map(|k| top_k_accuracy(&scores, 4, &labels, k).unwrap()).collect();
    assert_eq!(got, [1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
    // ties go to the lower index, as argmax does
    assert_eq!(top_k_accuracy(&[0.5, 0.5], 2, &[1], 1).unwrap(), 0.0);
    assert_eq!(top_k_accuracy(&[0.5, 0.5], 2, &[0], 1).unwrap(), 1.0);
    // errors name what is wrong
    assert!(top_k_accuracy(&scores, 4, &labels, 0).unwrap_err().to_string().contains("k ≥ 1"));
    let err = top_k_accuracy(&scores, 4, &labels, 5).unwrap_err().to_string();
    assert!(err.contains("top-5 accuracy of 4 classes"), "{err}");
    assert!(top_k_accuracy(&scores, 4, &[0, 3], 1).unwrap_err().to_string().contains("12 scores"));
    assert!(top_k_accuracy(&scores, 4, &[0, 3, 4], 1).unwrap_err().to_string().contains("label 4"));
}

#[test]
fn confusion_matrix_counts_recall_precision_and_table() {
    let labels = [0, 0, 1, 1, 1, 2];
    let predicted = [0, 1, 1, 1, 2, 2];
    let cm = ConfusionMatrix::from_predictions(3, &labels, &predicted).unwrap();
    assert_eq!((cm.count(0, 0), cm.count(0, 1), cm.count(1, 2), cm.count(2, 2)), (1, 1, 1, 1));
    assert_eq!(cm.total(), 6);
    assert!((cm.accuracy() - 4.0 / 6.0).abs() < 1e-12);
    assert_eq!(cm.recall(1), Some(2.0 / 3.0));
    assert_eq!(cm.precision(2), Some(0.5));
    assert_eq!(ConfusionMatrix::new(2).recall(0), None);
    let table = cm.to_string();
    assert!(
        table.contains("true\\pred") && table.contains("0.667") && table.contains("accuracy 0.6667 of 6"),
        "{table}"
    );
    assert!(ConfusionMatrix::from_predictions(3, &[0], &[3]).is_err());
    assert!(ConfusionMatrix::from_predictions(3, &[0, 1], &[0]).is_err());

    #[cfg(feature = "plot")]
    if shaped::plot::FONT_CANDIDATES.iter().any(|p| std::path::Path::new(p).exists()) {
        let p = std::env::temp_dir().join(format!("shaped-confusion-{}.png", std::process::id()));
        shaped::plot::plot_confusion(&cm, "test", &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 2000, "a drawn image, not an empty one: {} bytes", bytes.len());
        std::fs::remove_file(&p).ok();
    }
}

#[derive(Sequential)]
#[sequential(input = (4,))]
struct Tiny {
    fc: Linear<4, 3>,
}

#[test]
fn evaluate_agrees_with_accuracy() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let net = Tiny::init(&mut rng, Init::Gaussian(1.0));
    let x: Vec<f32> = (0..4 * 50).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
    let y: Vec<usize> = (0..50).map(|i| i % 3).collect();
    let data = Dataset::new(x, y, &[4], 3).unwrap();
    let ev = evaluate(&net, &data, 16, 2).unwrap();
    let acc = accuracy(&net, &SoftmaxCrossEntropy::<3>, &data, 16).unwrap();
    assert_eq!(ev.accuracy, acc);
    assert_eq!(ev.confusion.accuracy(), acc);
    assert_eq!(ev.confusion.total(), 50);
    assert!(ev.top_k >= ev.accuracy);
    assert_eq!(evaluate(&net, &data, 16, 3).unwrap().top_k, 1.0);
}

#[test]
fn predictions_without_a_loss_object() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let net = Tiny::init(&mut rng, Init::Gaussian(1.0));
    let x: Vec<f32> = (0..4 * 20).map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0).collect();
    let y: Vec<usize> = (0..20).map(|i| i % 3).collect();
    let data = Dataset::new(x.clone(), y, &[4], 3).unwrap();
    let xt = Tensor::<(Dyn, Const<4>)>::from_vec(x).unwrap();
    // classes agree with the loss-based prediction
    let classes = net.predict_classes(&xt);
    let via_loss = shaped::solver::predict(&net, &SoftmaxCrossEntropy::<3>, &data, 8).unwrap();
    assert_eq!(classes, via_loss);
    // probabilities: each row sums to 1, in the order of the scores
    let p = net.predict_proba(&xt);
    let s = net.predict(&xt);
    for (row, sc) in p.as_slice().chunks(3).zip(s.as_slice().chunks(3)) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        let e: Vec<f32> = sc.iter().map(|v| v.exp()).collect();
        let z: f32 = e.iter().sum();
        for (a, b) in row.iter().zip(&e) {
            assert!((a - b / z).abs() < 1e-6);
        }
    }
}
