//! Writes the `Module`, `Layer` and `Display` impls of a validated [`Model`], and the constants
//! that check its shape rules.
//!
//! A model whose only generic parameter is its element type is checked where it is defined: a
//! non-generic constant evaluates every field's rule in order (`shaped::shape::Checked::model`), and
//! one constant per field, at that field's span, raises the message if that field is where the
//! chain broke. `cargo check` reports it there, once. A model generic over sizes is checked where a
//! concrete model uses it.

use crate::parse::{Dims, Model};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(m: &Model<'_>) -> TokenStream {
    let ident = &m.ast.ident;
    let elem = &m.elem;
    let sh = quote!(::shaped);
    // Type parameters other than the element type are layers: bound them (as serde's derives do).
    let mut generics = m.ast.generics.clone();
    let elem_param = m.elem_param().cloned();
    let layer_params: Vec<_> =
        m.ast.generics.type_params().map(|t| t.ident.clone()).filter(|t| Some(t) != elem_param.as_ref()).collect();
    if !layer_params.is_empty() {
        let wc = generics.make_where_clause();
        for t in &layer_params {
            wc.predicates.push(syn::parse_quote!(#t: #sh::Module<#elem>));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let where_preds = where_c.map(|w| {
        let p = &w.predicates;
        quote!(#p,)
    });
    let n = m.fields.len();
    let names: Vec<_> = m.fields.iter().map(|(i, _)| *i).collect();
    let tys: Vec<_> = m.fields.iter().map(|(_, t)| *t).collect();
    let name_strs: Vec<String> = names.iter().map(|i| i.to_string()).collect();

    // `<Field as Module<E>>`, at the field's span: a field that is not a layer is reported there.
    let module: Vec<TokenStream> = tys
        .iter()
        .map(|ty| {
            let span = ty.span();
            quote_spanned!(span=> <#ty as #sh::Module<#elem>>)
        })
        .collect();
    // The impls assume every field is a layer (the check reports it once, at the field).
    let assume: Vec<TokenStream> = tys
        .iter()
        .map(|ty| {
            let span = ty.span();
            quote_spanned!(span=> for<'__shaped> #ty: #sh::Module<#elem>,)
        })
        .collect();

    // Each impl twice: with the bounds (compiled), and without them for rustdoc (`cfg(doc)`),
    // whose pages would otherwise list every field's bound on every model. The bounds stay in
    // what is compiled; only the documentation reads the bare impl.
    let assumed = quote!(#(#assume)*);
    let twin = |make: &dyn Fn(&TokenStream, &TokenStream) -> TokenStream| {
        let mut t = make(&quote!(#[cfg(not(doc))]), &assumed);
        t.extend(make(&quote!(#[cfg(doc)]), &TokenStream::new()));
        t
    };

    let extents = |d: &Dims| {
        let e = &d.exprs;
        quote!(#sh::shape::Extents::new(&[#((#e) as usize),*]))
    };
    let opt_extents = |d: &Option<Dims>| match d {
        Some(d) => {
            let e = extents(d);
            quote!(::core::option::Option::Some(#e))
        }
        None => quote!(::core::option::Option::None),
    };
    let input_ext = opt_extents(&m.input);
    let output_ext = opt_extents(&m.output);
    let rules = module.iter().map(|p| quote!(#p::RULE));
    let rule = quote! {
        #sh::shape::Rule::Seq(&#sh::shape::SeqRule {
            name: stringify!(#ident),
            input: #input_ext,
            output: #output_ext,
            fields: &[#(#sh::shape::Field { name: #name_strs, rule: #rules }),*],
        })
    };

    // Cache: (Step<C_0>, (Step<C_1>, ... (C_{n-1}, ())))
    let mut cache_ty = quote!(());
    for i in (0..n).rev() {
        let c = &module[i];
        cache_ty = if i == n - 1 {
            quote!((#c::Cache, #cache_ty))
        } else {
            quote!((#sh::layer::Step<#c::Cache, #elem>, #cache_ty))
        };
    }
    let sids: Vec<_> = (0..n).map(|i| format_ident!("__s{}", i)).collect();
    let mut destructure = TokenStream::new();
    let mut rest = format_ident!("__cache");
    for (i, sid) in sids.iter().enumerate() {
        let next = format_ident!("__rest{}", i);
        destructure.extend(quote!(let (#sid, #next) = #rest;));
        rest = next;
    }
    let last_rest = rest;

    // Views (`Module::VIEW`, e.g. `Flatten`): a field whose output is its input, reinterpreted, is
    // not called in the training passes (unless it is the last field, which writes `y`, or follows
    // another view, which keeps every expression below one level deep): the next field reads the
    // buffer before it, and writes its input gradient where the view's own input gradient would
    // go. `view(i)` is a constant, so the branch not taken is dead code; `None` where the field
    // cannot be a view that is skipped: the last field, and this crate's layers that are not views
    // (named in `NOT_VIEWS`), for which no branch is emitted at all (branches for every field
    // made `cargo check` of the 20-field `examples/deep20.rs` 0.24–0.30 s against 0.19–0.21 s).
    let view = |i: usize| -> Option<TokenStream> {
        let c = &module[i];
        if i + 1 >= n || !could_be_view(tys[i]) {
            return None;
        }
        Some(match (i > 0 && could_be_view(tys[i - 1])).then(|| &module[i - 1]) {
            Some(b) => quote!(const { #c::VIEW && !#b::VIEW }),
            None => quote!(const { #c::VIEW }),
        })
    };
    let branch = |v: Option<TokenStream>, yes: TokenStream, no: TokenStream| match v {
        Some(v) => quote!(if #v { #yes } else { #no }),
        None => no,
    };
    // The values of field i's output in the training passes (i < n − 1): its step's buffer, or
    // for a view the buffer before it (never itself a skipped view).
    let data: Vec<TokenStream> = (0..n.saturating_sub(1))
        .map(|i| {
            let prev = if i == 0 {
                quote!(x.data)
            } else {
                let p = &sids[i - 1];
                quote!(&#p.out[..])
            };
            let sid = &sids[i];
            branch(view(i), prev, quote!(&#sid.out[..]))
        })
        .collect();
    // Where the gradient with respect to field j's output goes (an `Option<&mut [E]>`; for a view,
    // where the gradient with respect to its input goes), and the call that sizes that buffer.
    let (target, fit): (Vec<TokenStream>, Vec<TokenStream>) = (0..n.saturating_sub(1))
        .map(|j| {
            let (prev_t, prev_f) = if j == 0 {
                (quote!(dx.as_deref_mut()), TokenStream::new())
            } else {
                let p = &sids[j - 1];
                (quote!(::core::option::Option::Some(&mut #p.grad[..])), quote!(#p.fit_grad();))
            };
            let sid = &sids[j];
            (
                branch(view(j), prev_t, quote!(::core::option::Option::Some(&mut #sid.grad[..]))),
                branch(view(j), prev_f, quote!(#sid.fit_grad();)),
            )
        })
        .unzip();
    // Input of field i in the training passes: `x` or the previous step's output.
    let act_in = |i: usize| {
        if i == 0 {
            quote!(x)
        } else {
            let (p, d) = (&sids[i - 1], &data[i - 1]);
            quote!(#sh::layer::Act::new(#d, x.n, #p.ext))
        }
    };

    // Fusion (`shaped::fuse`): `joined[i]` is a constant saying whether fields i and i + 1 are one
    // fused pair. The pair's call replaces the second field's, and the first field makes none; the
    // constant folds, so the branch not taken is dead code. (No field is in two pairs: heads and
    // tails are disjoint kinds.)
    let joined: Vec<TokenStream> = (0..n.saturating_sub(1))
        .map(|i| {
            let (a, b) = (&module[i], &module[i + 1]);
            quote!(const { #sh::fuse::joined(#a::FUSE, #b::FUSE) })
        })
        .collect();
    // The call of field i, or of the pair (i − 1, i) when joined; nothing when (i, i + 1) is.
    let choose = |i: usize, pair: TokenStream, own: TokenStream| -> TokenStream {
        let mut t = quote!({ #own });
        if i + 1 < n {
            let j = &joined[i];
            t = quote!(if !#j #t);
        }
        if i > 0 {
            let j = &joined[i - 1];
            t = quote!(if #j { #pair } else #t);
        }
        quote!(#t;)
    };
    // The pair's first layer (field i − 1) and its input.
    let head = |i: usize| -> (&syn::Type, &syn::Ident) { (tys[i - 1], names[i - 1]) };

    // forward (inference): fresh intermediates.
    let h_in = |i: usize| {
        if i == 0 {
            quote!(x)
        } else {
            let (h, e) = (format_ident!("__h{}", i - 1), format_ident!("__e{}", i - 1));
            quote!(#sh::layer::Act::new(&#h, x.n, #e))
        }
    };
    let mut fwd = TokenStream::new();
    for i in 0..n {
        let (c, name) = (&module[i], names[i]);
        let input = h_in(i);
        let out = if i == n - 1 {
            quote!(y)
        } else {
            let (h, e) = (format_ident!("__h{}", i), format_ident!("__e{}", i));
            let prev = if i == 0 {
                quote!(x.ext)
            } else {
                let p = format_ident!("__e{}", i - 1);
                quote!(#p)
            };
            fwd.extend(quote! {
                let #e = #sh::shape::out_extents(&#c::RULE, #prev);
                let mut #h = #sh::layer::buffer::<#elem>(x.n, #e);
            });
            quote!(&mut #h)
        };
        let pair = (i > 0).then(|| {
            let (a, an) = head(i);
            let (h, e) = (format_ident!("__h{}", i - 1), format_ident!("__e{}", i - 1));
            let hin = h_in(i - 1);
            let t = tys[i];
            quote!(#sh::fuse::forward::<#elem, #a, #t>(&self.#an, &self.#name, #hin, &mut #h, #e, #out))
        });
        fwd.extend(choose(i, pair.unwrap_or_default(), quote!(#c::forward_raw(&self.#name, #input, #out))));
    }

    // forward_train and forward_reuse: intermediates in the cache.
    let mut fwd_train = TokenStream::new();
    let mut fwd_reuse = TokenStream::new();
    for i in 0..n {
        let (c, name, sid) = (&module[i], names[i], &sids[i]);
        let input = act_in(i);
        let (out, cache) = if i == n - 1 {
            (quote!(y), quote!(#sid))
        } else {
            let prev = if i == 0 {
                quote!(x.ext)
            } else {
                let p = &sids[i - 1];
                quote!(#p.ext)
            };
            let prep = quote!(#sid.prepare(&#c::RULE, #prev, x.n););
            let skip = quote!(#sid.prepare_view(&#c::RULE, #prev););
            fwd_train.extend(branch(view(i), skip.clone(), prep.clone()));
            fwd_reuse.extend(branch(view(i), skip, prep));
            (quote!(&mut #sid.out), quote!(&mut #sid.cache))
        };
        let (train_pair, reuse_pair) = if i > 0 {
            let ((a, an), p, pin, c) = (head(i), &sids[i - 1], act_in(i - 1), tys[i]);
            (
                quote!(#sh::fuse::forward_train::<#elem, #a, #c>(&mut self.#an, #pin, #p, #out, #cache)),
                quote!(#sh::fuse::forward_reuse::<#elem, #a, #c>(&self.#an, &self.#name, #pin, #p, #out, #cache)),
            )
        } else {
            Default::default()
        };
        let (train, reuse) = (
            choose(i, train_pair, quote!(#c::forward_train_raw(&mut self.#name, #input, #out, #cache))),
            choose(i, reuse_pair, quote!(#c::forward_reuse(&self.#name, #input, #out, #cache))),
        );
        fwd_train.extend(branch(view(i), TokenStream::new(), train));
        fwd_reuse.extend(branch(view(i), TokenStream::new(), reuse));
    }

    // backward, last layer first.
    let dx_of = |i: usize| {
        if i == 0 { quote!(dx.as_deref_mut()) } else { target[i - 1].clone() }
    };
    let mut bwd = TokenStream::new();
    for i in (0..n).rev() {
        let (c, name, sid) = (&module[i], names[i], &sids[i]);
        let input = act_in(i);
        let dx = dx_of(i);
        let (out, dy, cache) = if i == n - 1 {
            (quote!(y), quote!(dy), quote!(#sid))
        } else {
            (quote!(&#sid.out), quote!(&#sid.grad), quote!(&mut #sid.cache))
        };
        let own_fit = if i > 0 { fit[i - 1].clone() } else { TokenStream::new() };
        let pair = (i > 0).then(|| {
            let ((a, an), p, pin, pdx, c) = (head(i), &sids[i - 1], act_in(i - 1), dx_of(i - 1), tys[i]);
            let fit = (i > 1).then(|| fit[i - 2].clone());
            quote! {
                #fit
                #sh::fuse::backward::<#elem, #a, #c>(
                    (&self.#an, &self.#name), #pin, #p, (#out, #dy), #cache, #pdx, (&mut grads.#an, &mut grads.#name),
                )
            }
        });
        let own = choose(
            i,
            pair.unwrap_or_default(),
            quote!(#c::backward_raw(&self.#name, #input, #out, #dy, #cache, #dx, &mut grads.#name)),
        );
        bwd.extend(branch(view(i), TokenStream::new(), quote!(#own_fit #own)));
    }

    let seeds: Vec<u64> = (0..n as u64).collect();
    // `Pair<Linear<3, 4>, BatchNorm1d<4>>`: layer parameters by their names, sizes by value (the
    // element type is left out).
    let shown: Vec<TokenStream> = m
        .ast
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) if Some(&t.ident) != elem_param.as_ref() => {
                let id = &t.ident;
                Some(quote!(<#id as #sh::Module<#elem>>::type_name()))
            }
            syn::GenericParam::Const(c) => {
                let id = &c.ident;
                Some(quote!(::std::string::ToString::to_string(&#id)))
            }
            _ => None,
        })
        .collect();
    let type_name = if shown.is_empty() {
        quote!(::std::string::String::from(stringify!(#ident)))
    } else {
        quote!(::std::format!("{}<{}>", stringify!(#ident), [#(#shown),*].join(", ")))
    };
    let module_impl_with = |cfg: &TokenStream, bounds: &TokenStream| {
        quote! {
            #cfg
            #[automatically_derived]
            impl #impl_g #sh::Module<#elem> for #ident #ty_g where #where_preds #bounds {
                const RULE: #sh::shape::Rule = #rule;
                type Cache = #cache_ty;
                const PER_SAMPLE: bool = true #( && #module::PER_SAMPLE )*;
                const IN_PARTS: bool = true #( && #module::IN_PARTS )*;

                fn zeros() -> Self {
                    #ident { #( #names: #module::zeros(), )* }
                }
                fn visit_params(&self, path: &#sh::Path<'_>, f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &[#elem])) {
                    #( #module::visit_params(&self.#names, &path.child(#name_strs), f); )*
                }
                fn visit_params_mut(&mut self, path: &#sh::Path<'_>, f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &mut [#elem])) {
                    #( #module::visit_params_mut(&mut self.#names, &path.child(#name_strs), f); )*
                }
                fn zip_params_mut(
                    &mut self,
                    other: &Self,
                    path: &#sh::Path<'_>,
                    f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &mut [#elem], &[#elem]),
                ) {
                    #( #module::zip_params_mut(&mut self.#names, &other.#names, &path.child(#name_strs), f); )*
                }
                fn reseed(&mut self, seed: u64) {
                    #( #module::reseed(&mut self.#names, #sh::layer::mix_seed(seed, #seeds)); )*
                }
                fn type_name() -> ::std::string::String {
                    #type_name
                }
                fn summary_rows(&self, input: #sh::shape::Extents) -> ::std::vec::Vec<#sh::layer::SummaryRow> {
                    let mut __e = input;
                    let mut __rows = ::std::vec::Vec::with_capacity(#n);
                    #(
                        __e = #sh::shape::out_extents(&#module::RULE, __e);
                        __rows.push(#sh::layer::SummaryRow {
                            field: #name_strs,
                            layer: #module::type_name(),
                            output: __e.dims().to_vec(),
                            params: #module::num_params(&self.#names),
                        });
                    )*
                    __rows
                }

                fn forward_raw(&self, x: #sh::layer::Act<'_, #elem>, y: &mut [#elem]) {
                    #sh::layer::check_call::<#elem, Self>(&x, y.len());
                    #fwd
                }

                fn forward_train_raw(&mut self, x: #sh::layer::Act<'_, #elem>, y: &mut [#elem], __cache: &mut Self::Cache) {
                    #sh::layer::check_call::<#elem, Self>(&x, y.len());
                    #destructure
                    let _ = #last_rest;
                    #fwd_train
                }

                fn forward_reuse(&self, x: #sh::layer::Act<'_, #elem>, y: &mut [#elem], __cache: &mut Self::Cache) {
                    #sh::layer::check_call::<#elem, Self>(&x, y.len());
                    #destructure
                    let _ = #last_rest;
                    #fwd_reuse
                }

                fn backward_raw(
                    &self,
                    x: #sh::layer::Act<'_, #elem>,
                    y: &[#elem],
                    dy: &[#elem],
                    __cache: &mut Self::Cache,
                    mut dx: ::core::option::Option<&mut [#elem]>,
                    grads: &mut Self,
                ) {
                    #sh::layer::check_call::<#elem, Self>(&x, y.len());
                    #destructure
                    let _ = #last_rest;
                    #bwd
                }
            }
        }
    };
    let module_impl = twin(&module_impl_with);

    // The typed face and the summary, where the input (and the output) can be written as types.
    let mut g = generics.clone();
    g.params.insert(0, syn::parse_quote!(Batch: #sh::shape::Dim));
    let (impl_gb, _, _) = g.split_for_impl();
    let dim_tys = |d: &Dims| d.exprs.iter().map(|e| quote!(#sh::shape::Const<{ #e }>)).collect::<Vec<_>>();

    let mut checks = TokenStream::new();
    let mut typed = TokenStream::new();
    if let Some(input) = &m.input {
        let in_dims = dim_tys(input);
        let s_in = quote!((Batch, #(#in_dims),*));
        let out_ty = if m.concrete {
            // Field-by-field check in a non-generic constant (the element type, if generic, is
            // checked as f32: rules do not depend on it).
            let alias = m.elem_param().map(|e| quote!(#[allow(dead_code)] type #e = f32;));
            let fields_check = tys.iter().enumerate().map(|(i, ty)| {
                let span = ty.span();
                quote_spanned!(span=>
                    const _: () = if __SHAPED_CHECK.failed_at(#i) { ::core::panic!("{}", __SHAPED_CHECK.msg.as_str()) };
                )
            });
            let in_span = input.span;
            let check_rules = tys.iter().map(|ty| {
                let span = ty.span();
                quote_spanned!(span=> <#ty as #sh::Module<#elem>>::RULE)
            });
            checks.extend(quote! {
                #alias
                const __SHAPED_CHECK: #sh::shape::Checked = #sh::shape::Checked::model(&#sh::shape::Rule::Seq(&#sh::shape::SeqRule {
                    name: stringify!(#ident),
                    input: #input_ext,
                    output: #output_ext,
                    fields: &[#(#sh::shape::Field { name: #name_strs, rule: #check_rules }),*],
                }));
                #(#fields_check)*
            });
            checks.extend(quote_spanned!(in_span=>
                const _: () = if __SHAPED_CHECK.failed_at(#sh::shape::AT_INPUT) { ::core::panic!("{}", __SHAPED_CHECK.msg.as_str()) };
            ));
            Some(quote! {
                #sh::shape::ShapeOf<
                    Batch,
                    { __SHAPED_CHECK.out.rank() },
                    { __SHAPED_CHECK.out.dim(0) },
                    { __SHAPED_CHECK.out.dim(1) },
                    { __SHAPED_CHECK.out.dim(2) },
                >
            })
        } else {
            m.output.as_ref().map(|o| {
                let od = dim_tys(o);
                quote!((Batch, #(#od),*))
            })
        };
        if let Some(out_ty) = out_ty {
            typed.extend(twin(&|cfg: &TokenStream, bounds: &TokenStream| {
                quote! {
                    #cfg
                    #[automatically_derived]
                    impl #impl_gb #sh::Layer<#s_in, #elem> for #ident #ty_g where #where_preds #bounds {
                        /// The output shape, computed by the model's shape rules (see its summary).
                        type Out = #out_ty;
                    }
                    #cfg
                    #[automatically_derived]
                    impl #impl_g #sh::Model<#elem> for #ident #ty_g where #where_preds #bounds {
                        type Input = (#sh::shape::Dyn, #(#in_dims),*);
                    }
                }
            }));
        }
        let in_ext = extents(input);
        typed.extend(twin(&|cfg: &TokenStream, bounds: &TokenStream| {
            quote! {
            #cfg
            #[automatically_derived]
            impl #impl_g ::core::fmt::Display for #ident #ty_g where #where_preds #bounds {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    let __input = #in_ext;
                    #sh::layer::write_summary(
                        f,
                        stringify!(#ident),
                        __input.dims(),
                        &<Self as #sh::Module<#elem>>::summary_rows(self, __input),
                    )
                }
            }
            }
        }));
    }
    if !m.concrete {
        // A generic model: each field must be a layer (reported once, at the field).
        let fits = tys.iter().map(|ty| {
            let span = ty.span();
            quote_spanned!(span=> __shaped_is_layer::<#ty, #elem>();)
        });
        checks.extend(quote! {
            #[allow(dead_code, non_snake_case)]
            fn __shaped_check #impl_g () #where_c {
                fn __shaped_is_layer<L: #sh::Module<__E>, __E: #sh::kernels::Elem>() {}
                #(#fits)*
            }
        });
    }

    quote! {
        const _: () = {
            #checks
            #module_impl
            #typed
        };
    }
}

#[cfg(test)]
mod tests {
    /// Each impl comes twice: the compiled one assumes every field is a layer (so a field that is
    /// not one is reported once, at the field), and rustdoc's copy carries no such bounds (the
    /// `Layer` page listed kilobytes of them per built-in model).
    #[test]
    fn rustdoc_reads_impls_without_the_field_bounds() {
        let ast: syn::DeriveInput = syn::parse_quote! {
            #[sequential(input = (4,))]
            struct Mlp { fc1: Linear<4, 8>, relu: ReLU, fc2: Linear<8, 2> }
        };
        let m = crate::parse::Model::from_ast(&ast).unwrap();
        let out = super::expand(&m).to_string();
        let pieces: Vec<&str> = out.split("# [cfg (").skip(1).collect();
        let compiled: Vec<&&str> = pieces.iter().filter(|p| p.starts_with("not (doc))]")).collect();
        let documented: Vec<&&str> = pieces.iter().filter(|p| p.starts_with("doc)]")).collect();
        // Module, Layer, Model, Display.
        assert_eq!((compiled.len(), documented.len()), (4, 4), "{out}");
        for p in &compiled {
            assert_eq!(p.matches("'__shaped > ").count(), 3, "one bound per field: {p}");
        }
        for p in &documented {
            assert!(!p.contains("'__shaped"), "no field bounds: {p}");
        }
    }
}

/// This crate's layers that are not views (`Module::VIEW` false): the derive emits no view branch
/// for a field of one of these types (by the last segment of its path; any other type, an alias
/// included, gets the branch, which is correct whatever the type says).
const NOT_VIEWS: &[&str] = &[
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormReLU2d",
    "Conv2d",
    "Dropout",
    "GELU",
    "GlobalAvgPool",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Softmax",
    "Tanh",
];

/// Whether a field of type `t` may be a view (its type is not one of [`NOT_VIEWS`]).
fn could_be_view(t: &syn::Type) -> bool {
    match t {
        syn::Type::Path(p) => p.path.segments.last().is_none_or(|s| !NOT_VIEWS.contains(&s.ident.to_string().as_str())),
        _ => true,
    }
}
