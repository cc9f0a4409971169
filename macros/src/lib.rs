//! Derive macros of `shaped`: `#[derive(Sequential)]` chains a struct's layer fields into a model.
//!
//! `parse` reads and validates the struct and its `#[sequential(...)]` attribute into a [`parse::Model`];
//! `codegen` writes the `Module` and `Layer` impls and the summary. Every misuse is a spanned
//! `syn::Error`, never a panic.

use proc_macro::TokenStream;

mod codegen;
mod parse;

/// Derives `Module`, `Layer` and `Display` (a model summary) for a struct whose named fields are
/// layers applied in order. (The example is compiled and run where the derive is used: the `shaped`
/// crate's front-page doctest, `tests/derive.rs` and `tests/ui/`; a proc-macro crate cannot run it.)
///
/// ```text
/// #[derive(Sequential)]
/// #[sequential(input = (1, 28, 28))]          // sample shape; the batch dimension stays free
/// struct Cnn {
///     conv: Conv2d<1, 5, 7, 1, 0, false>,
///     relu1: ReLU,
///     pool: MaxPool2d<2>,
///     flat: Flatten,
///     fc1: Linear<605, 16>,
///     relu2: ReLU,
///     fc2: Linear<16, 10>,
/// }
/// ```
///
/// Options of `#[sequential(...)]`: `input = (d1, ...)` (required) and `elem = T` (the element type,
/// `f32` by default; a type parameter of the struct works too).
#[proc_macro_derive(Sequential, attributes(sequential))]
pub fn derive_sequential(input: TokenStream) -> TokenStream {
    let ast = syn::parse_macro_input!(input as syn::DeriveInput);
    match parse::Model::from_ast(&ast) {
        Ok(model) => codegen::expand(&model).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
