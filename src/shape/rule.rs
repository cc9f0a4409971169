//! Shape rules as data: every layer states its rule as a [`Rule`] value (an associated constant),
//! and one `const fn` evaluator, [`apply`], computes output extents or an error sentence with the
//! sizes in decimal.
//!
//! The evaluator is plain `usize` arithmetic, so it has no table and no size limit; it runs at
//! compile time where `#[derive(Sequential)]` emits a non-generic constant per model (`cargo check`
//! reports a failure at the offending field), at monomorphisation in typed generic code (`cargo
//! build`), and at run time to size a derived model's intermediate buffers.

// The error of a rule is a `Msg` held by value: const evaluation cannot box, and a rule is
// evaluated once per field at compile time and once per call at run time.
#![allow(clippy::result_large_err)]

use super::msg::Msg;

/// The extents of one sample, the batch excluded: rank 0 (one value per sample) to 3 (`C×H×W`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Extents {
    rank: usize,
    d: [usize; 3],
}

impl Extents {
    /// One value per sample (rank 0).
    pub const SCALAR: Extents = Extents { rank: 0, d: [0; 3] };

    /// Extents from a list of at most three dims (`&[1, 28, 28]`); longer lists panic.
    pub const fn new(dims: &[usize]) -> Extents {
        assert!(dims.len() <= 3, "a sample has at most three extents (C, H, W)");
        let mut d = [0; 3];
        let mut i = 0;
        while i < dims.len() {
            d[i] = dims[i];
            i += 1;
        }
        Extents { rank: dims.len(), d }
    }

    /// A flat sample of `n` features.
    pub const fn flat(n: usize) -> Extents {
        Extents { rank: 1, d: [n, 0, 0] }
    }

    /// A `c×h×w` feature map.
    pub const fn map(c: usize, h: usize, w: usize) -> Extents {
        Extents { rank: 3, d: [c, h, w] }
    }

    /// Number of extents.
    pub const fn rank(&self) -> usize {
        self.rank
    }

    /// Extent `i` (0 past the rank).
    pub const fn dim(&self, i: usize) -> usize {
        if i < self.rank { self.d[i] } else { 0 }
    }

    /// The extents as a slice.
    pub const fn dims(&self) -> &[usize] {
        self.d.split_at(self.rank).0
    }

    /// Elements per sample, `None` when the product overflows `usize`.
    pub const fn checked_numel(&self) -> Option<usize> {
        let mut p: usize = 1;
        let mut i = 0;
        while i < self.rank {
            p = match p.checked_mul(self.d[i]) {
                Some(v) => v,
                None => return None,
            };
            i += 1;
        }
        Some(p)
    }

    /// Elements per sample (shape rules guarantee the product fits; panics otherwise).
    pub const fn numel(&self) -> usize {
        match self.checked_numel() {
            Some(n) => n,
            None => panic!("a sample's element count overflows usize"),
        }
    }

    /// Whether both have the same rank and extents.
    pub const fn same(&self, o: &Extents) -> bool {
        if self.rank != o.rank {
            return false;
        }
        let mut i = 0;
        while i < self.rank {
            if self.d[i] != o.d[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Appends `5×11×11` (or `605`, or `a scalar`) to `m`.
    pub const fn write(&self, m: Msg) -> Msg {
        if self.rank == 0 {
            return m.s("one value per sample");
        }
        let mut m = m.n(self.d[0]);
        let mut i = 1;
        while i < self.rank {
            m = m.s("×").n(self.d[i]);
            i += 1;
        }
        m
    }
}

impl Default for Extents {
    fn default() -> Self {
        Extents::SCALAR
    }
}

/// One field of a derived model's rule: its name (the parameter path component) and its rule.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// The field's rule.
    pub rule: Rule,
}

/// The rule of a derived model: its layers in order and, where declared, its input and output.
#[derive(Clone, Copy, Debug)]
pub struct SeqRule {
    /// The struct's name.
    pub name: &'static str,
    /// The declared sample shape (`#[sequential(input = ...)]`), if any.
    pub input: Option<Extents>,
    /// The declared output sample shape (`#[sequential(output = ...)]`), if any.
    pub output: Option<Extents>,
    /// The fields in order.
    pub fields: &'static [Field],
}

/// A layer's shape rule. Layers state theirs as the associated constant
/// [`Module::RULE`](crate::Module::RULE); [`apply`] evaluates it.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// The identity map (a residual block's default shortcut).
    Identity,
    /// An elementwise layer (`name`): any input, output of the same shape.
    Elementwise {
        /// The layer's name for messages.
        name: &'static str,
    },
    /// Dropout keeping (`keep`) or dropping `percent` % of activations; any shape.
    Dropout {
        /// The percentage as spelled in the type.
        percent: u32,
        /// `Keep<P>` (true) or `Drop<P>` (false).
        keep: bool,
    },
    /// A fully connected layer `i → o` on flat inputs.
    Dense {
        /// Input features.
        i: usize,
        /// Output features.
        o: usize,
    },
    /// A layer (`name<n>`) on flat inputs of `n` features, output of the same shape (BatchNorm1d,
    /// LayerNorm).
    Features {
        /// The layer's name.
        name: &'static str,
        /// The feature count.
        n: usize,
    },
    /// A layer (`name`) over the features of a flat input of any width, output of the same shape
    /// (Softmax, LogSoftmax).
    Flat {
        /// The layer's name.
        name: &'static str,
    },
    /// A layer (`name<c>`) on `c×H×W` feature maps, output of the same shape (BatchNorm2d).
    Channels {
        /// The layer's name.
        name: &'static str,
        /// The channel count.
        c: usize,
    },
    /// A 2-D convolution `c → f` channels, `k×k` kernel, stride `s`, zero padding `p`.
    Conv {
        /// Input channels.
        c: usize,
        /// Output channels.
        f: usize,
        /// Kernel size.
        k: usize,
        /// Stride.
        s: usize,
        /// Padding.
        p: usize,
        /// Whether the layer has a bias (for its name in messages).
        bias: bool,
    },
    /// A 2-D pooling (`name`) over `k×k` windows with stride `s` and padding `p`; `exact` requires the
    /// windows to tile the padded input.
    Pool {
        /// The layer's name.
        name: &'static str,
        /// Window.
        k: usize,
        /// Stride.
        s: usize,
        /// Padding.
        p: usize,
        /// Whether the windows must tile the input exactly.
        exact: bool,
    },
    /// A pooling (`name`) of each channel of a `C×H×W` map to one value: output `C`.
    GlobalPool {
        /// The layer's name.
        name: &'static str,
    },
    /// Flattens a sample of any rank ≥ 1 into its element count.
    Flatten,
    /// A derived model.
    Seq(&'static SeqRule),
    /// `main(x) + shortcut(x)`: both branches must produce the same shape.
    Residual {
        /// The main branch.
        main: &'static Rule,
        /// The shortcut ([`Rule::Identity`] for an identity shortcut).
        shortcut: &'static Rule,
    },
    /// A layer (`name`) with one fixed input and output (hand-written layers).
    Fixed {
        /// The layer's name.
        name: &'static str,
        /// The input it takes.
        input: Extents,
        /// The output it produces.
        output: Extents,
    },
}

/// Bytes of the largest element type, for the "fits in memory" checks.
const MAX_ELEM: usize = 8;

pub(super) const fn fits_memory(n: usize) -> bool {
    n <= (isize::MAX as usize) / MAX_ELEM
}

/// Appends the layer as spelled in Rust (`Conv2d<1, 5, 7>`, `MaxPool2d<2>`) to `m`.
pub const fn describe(rule: &Rule, m: Msg) -> Msg {
    match *rule {
        Rule::Identity => m.s("Identity"),
        Rule::Elementwise { name } => m.s(name),
        Rule::Dropout { percent, keep } => {
            m.s("Dropout<").s(if keep { "Keep<" } else { "Drop<" }).n(percent as usize).s(">>")
        }
        Rule::Dense { i, o } => m.s("Linear<").n(i).s(", ").n(o).s(">"),
        Rule::Features { name, n } => m.s(name).s("<").n(n).s(">"),
        Rule::Channels { name, c } => m.s(name).s("<").n(c).s(">"),
        Rule::Conv { c, f, k, s, p, bias } => {
            let m = m.s("Conv2d<").n(c).s(", ").n(f).s(", ").n(k);
            let tail = s != 1 || p != 0 || !bias;
            let m = if tail { m.s(", ").n(s).s(", ").n(p) } else { m };
            let m = if !bias { m.s(", false") } else { m };
            m.s(">")
        }
        Rule::Pool { name, k, s, p, .. } => {
            let m = m.s(name).s("<").n(k);
            let m = if s != k || p != 0 { m.s(", ").n(s) } else { m };
            let m = if p != 0 { m.s(", ").n(p) } else { m };
            m.s(">")
        }
        Rule::GlobalPool { name } | Rule::Flat { name } => m.s(name),
        Rule::Flatten => m.s("Flatten"),
        Rule::Seq(seq) => m.s(seq.name),
        Rule::Residual { main, shortcut } => {
            let m = describe(main, m.s("Residual<"));
            let m = if matches!(shortcut, Rule::Identity) { m } else { describe(shortcut, m.s(", ")) };
            m.s(">")
        }
        Rule::Fixed { name, .. } => m.s(name),
    }
}

/// `path: Layer<…>` — the start of every error.
const fn head(path: &Msg, rule: &Rule) -> Msg {
    let m = if path.is_empty() { Msg::new() } else { Msg::new().m(path).s(": ") };
    describe(rule, m)
}

const fn child(path: &Msg, name: &str) -> Msg {
    if path.is_empty() { Msg::new().s(name) } else { Msg::new().m(path).s(".").s(name) }
}

const fn rank_word(x: &Extents) -> &'static str {
    match x.rank {
        0 => "one value per sample",
        1 => "a flat input of ",
        2 => "a rank-2 input of ",
        _ => "a feature map of ",
    }
}

const fn gets(m: Msg, x: &Extents) -> Msg {
    let m = m.s(rank_word(x));
    if x.rank == 0 { m } else { x.write(m) }
}

const fn zero_size(path: &Msg, rule: &Rule, what: &str) -> Msg {
    head(path, rule).s(" has ").s(what).s(" 0; it must be at least 1")
}

/// Output extents of `rule` over input `x`, or the error sentence; `path` is the field path that
/// prefixes it (`block2.conv`; empty for none).
pub const fn apply(rule: &Rule, x: Extents, path: &Msg) -> Result<Extents, Msg> {
    match *rule {
        Rule::Identity | Rule::Elementwise { .. } => Ok(x),
        Rule::Dropout { percent, keep } => {
            if percent > 100 {
                let verb = if keep { " keeps " } else { " drops " };
                return Err(head(path, rule)
                    .s(verb)
                    .n(percent as usize)
                    .s(" % of activations; a percentage is at most 100"));
            }
            if keep && percent == 0 {
                return Err(head(path, rule).s(" keeps no activation; use Keep<P> with P from 1 to 100"));
            }
            if !keep && percent == 100 {
                return Err(head(path, rule).s(" drops every activation; use Drop<P> with P from 0 to 99"));
            }
            Ok(x)
        }
        Rule::Dense { i, o } => {
            if i == 0 {
                return Err(zero_size(path, rule, "input width"));
            }
            if o == 0 {
                return Err(zero_size(path, rule, "output width"));
            }
            match i.checked_mul(o) {
                Some(n) if fits_memory(n) => {}
                _ => return Err(head(path, rule).s(" has more weights than fit in memory (").n(i).s("·").n(o).s(")")),
            }
            if x.rank != 1 {
                let m = gets(head(path, rule).s(" takes a flat input of ").n(i).s(" features, but gets "), &x);
                let m = if x.rank >= 2 { m.s("; put a Flatten before it") } else { m };
                return Err(m);
            }
            if x.d[0] != i {
                return Err(head(path, rule)
                    .s(" expects ")
                    .n(i)
                    .s(" input features, but the previous layer produces ")
                    .n(x.d[0]));
            }
            Ok(Extents::flat(o))
        }
        Rule::Features { name, n } => {
            if n == 0 {
                return Err(zero_size(path, rule, "width"));
            }
            if x.rank != 1 {
                let m = gets(head(path, rule).s(" takes a flat input of ").n(n).s(" features, but gets "), &x);
                let is_bn = matches!(name.as_bytes(), b"BatchNorm1d");
                let m =
                    if x.rank == 3 && is_bn { m.s("; use BatchNorm2d<").n(x.d[0]).s("> for feature maps") } else { m };
                return Err(m);
            }
            if x.d[0] != n {
                return Err(head(path, rule)
                    .s(" expects ")
                    .n(n)
                    .s(" input features, but the previous layer produces ")
                    .n(x.d[0]));
            }
            Ok(x)
        }
        Rule::Flat { .. } => {
            if x.rank != 1 {
                let m = gets(head(path, rule).s(" takes a flat input of features, but gets "), &x);
                return Err(if x.rank >= 2 { m.s("; put a Flatten before it") } else { m });
            }
            Ok(x)
        }
        Rule::Channels { c, .. } => {
            if c == 0 {
                return Err(zero_size(path, rule, "channel count"));
            }
            if x.rank != 3 {
                let m = gets(head(path, rule).s(" takes a C×H×W feature map, but gets "), &x);
                let m = if x.rank == 1 { m.s("; use BatchNorm1d<").n(x.d[0]).s("> for flat inputs") } else { m };
                return Err(m);
            }
            if x.d[0] != c {
                return Err(head(path, rule)
                    .s(" expects ")
                    .n(c)
                    .s(" input channels, but the previous layer produces ")
                    .n(x.d[0]));
            }
            Ok(x)
        }
        Rule::Conv { c, f, k, s, p, .. } => {
            if c == 0 {
                return Err(zero_size(path, rule, "input channel count"));
            }
            if f == 0 {
                return Err(zero_size(path, rule, "output channel count"));
            }
            if k == 0 {
                return Err(zero_size(path, rule, "kernel size"));
            }
            if s == 0 {
                return Err(zero_size(path, rule, "stride"));
            }
            if x.rank != 3 {
                return Err(gets(head(path, rule).s(" takes a C×H×W feature map, but gets "), &x));
            }
            if x.d[0] != c {
                return Err(head(path, rule)
                    .s(" expects ")
                    .n(c)
                    .s(" input channels, but the previous layer produces ")
                    .n(x.d[0]));
            }
            match window_out(path, rule, x, k, s, p, false) {
                Ok(e) => match Extents::map(f, e.d[1], e.d[2]).checked_numel() {
                    Some(n) if fits_memory(n) => Ok(Extents::map(f, e.d[1], e.d[2])),
                    _ => Err(head(path, rule).s(" produces more values than fit in memory")),
                },
                Err(m) => Err(m),
            }
        }
        Rule::Pool { k, s, p, exact, .. } => {
            if k == 0 {
                return Err(zero_size(path, rule, "window"));
            }
            if s == 0 {
                return Err(zero_size(path, rule, "stride"));
            }
            if p > k / 2 {
                return Err(head(path, rule).s(" pads by ").n(p).s(", more than half its window ").n(k));
            }
            if x.rank != 3 {
                return Err(gets(head(path, rule).s(" takes a C×H×W feature map, but gets "), &x));
            }
            window_out(path, rule, x, k, s, p, exact)
        }
        Rule::GlobalPool { .. } => {
            if x.rank != 3 {
                return Err(gets(head(path, rule).s(" takes a C×H×W feature map, but gets "), &x));
            }
            Ok(Extents::flat(x.d[0]))
        }
        Rule::Flatten => {
            if x.rank == 0 {
                return Err(head(path, rule).s(" has nothing to flatten: its input has one value per sample"));
            }
            match x.checked_numel() {
                Some(n) if fits_memory(n) => Ok(Extents::flat(n)),
                _ => Err(head(path, rule).s(" of ").m(&x.write(Msg::new())).s(": the product overflows")),
            }
        }
        Rule::Seq(seq) => {
            if let Some(want) = seq.input
                && !want.same(&x)
            {
                let m = want.write(head(path, rule).s(" expects input "));
                return Err(x.write(m.s(", but the previous layer produces ")));
            }
            let mut cur = x;
            let mut i = 0;
            while i < seq.fields.len() {
                let f = &seq.fields[i];
                cur = match apply(&f.rule, cur, &child(path, f.name)) {
                    Ok(e) => e,
                    Err(m) => return Err(m),
                };
                i += 1;
            }
            if let Some(out) = seq.output
                && !out.same(&cur)
            {
                let m = out.write(head(path, rule).s(" declares output "));
                return Err(cur.write(m.s(", but its last layer produces ")));
            }
            Ok(cur)
        }
        Rule::Residual { main, shortcut } => {
            let a = match apply(main, x, &child(path, "block")) {
                Ok(e) => e,
                Err(m) => return Err(m),
            };
            let b = match apply(shortcut, x, &child(path, "shortcut")) {
                Ok(e) => e,
                Err(m) => return Err(m),
            };
            if !a.same(&b) {
                let m = a.write(head(path, rule).s(": its block produces "));
                let m = b.write(m.s(", but its shortcut produces "));
                let m = m.s("; both must be equal");
                if matches!(shortcut, Rule::Identity) && a.rank == 3 && x.rank == 3 && a.d[1] > 0 {
                    let stride = x.d[1] / a.d[1];
                    let m = describe(
                        main,
                        m.s(" (the identity shortcut passes the input on); use a projection shortcut, e.g. Residual<"),
                    );
                    return Err(m.s(", Conv2d<").n(x.d[0]).s(", ").n(a.d[0]).s(", 1, ").n(stride).s(", 0, false>>"));
                }
                return Err(m);
            }
            Ok(a)
        }
        Rule::Fixed { input, output, .. } => {
            if !input.same(&x) {
                let m = input.write(head(path, rule).s(" expects input "));
                return Err(x.write(m.s(", but the previous layer produces ")));
            }
            Ok(output)
        }
    }
}

/// A sliding window's output extents over `x` (`C×H×W`): `(H + 2P − K)/S + 1` per spatial dim.
const fn window_out(
    path: &Msg,
    rule: &Rule,
    x: Extents,
    k: usize,
    s: usize,
    p: usize,
    exact: bool,
) -> Result<Extents, Msg> {
    let (h, w) = (x.d[1], x.d[2]);
    let pp = match p.checked_mul(2) {
        Some(v) => v,
        None => return Err(head(path, rule).s(" pads its input past usize")),
    };
    let (hp, wp) = match (h.checked_add(pp), w.checked_add(pp)) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(head(path, rule).s(" pads its input past usize")),
    };
    if hp < k || wp < k {
        let m = head(path, rule).s(" needs an input of at least ").n(k).s("×").n(k);
        let m = m.s(", gets ").n(h).s("×").n(w);
        return Err(if p > 0 { m.s(" (").n(hp).s("×").n(wp).s(" padded)") } else { m });
    }
    if exact && (!(hp - k).is_multiple_of(s) || !(wp - k).is_multiple_of(s)) {
        let bad = if !(hp - k).is_multiple_of(s) { hp } else { wp };
        let r = (bad - k) % s;
        let m = head(path, rule).s(" does not tile its ").n(h).s("×").n(w).s(" input: (");
        let m = m.n(bad).s(" − ").n(k).s(") is not a multiple of the stride ").n(s);
        let m = m.s("; the previous layer should produce an extent of ").n(bad - r - 2 * p);
        return Err(m.s(" or ").n(bad - r + s - 2 * p));
    }
    Ok(Extents::map(x.d[0], (hp - k) / s + 1, (wp - k) / s + 1))
}
