//! Writes the `Module`, `Layer` and `Display` impls of a validated [`Model`].
//!
//! Each chaining step is emitted at its field's span, so a layer that does not fit its input is
//! reported at that field.

use crate::parse::Model;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(m: &Model<'_>) -> TokenStream {
    let ident = &m.ast.ident;
    let elem = &m.elem;
    let (impl_g, ty_g, where_c) = m.ast.generics.split_for_impl();
    let where_preds = where_c.map(|w| {
        let p = &w.predicates;
        quote!(#p,)
    });
    let sh = quote!(::shaped);
    let n = m.fields.len();
    let names: Vec<_> = m.fields.iter().map(|(i, _)| *i).collect();
    let tys: Vec<_> = m.fields.iter().map(|(_, t)| *t).collect();
    let name_strs: Vec<String> = names.iter().map(|i| i.to_string()).collect();

    // Impl generics with an extra batch parameter.
    let mut g = m.ast.generics.clone();
    g.params.insert(0, syn::parse_quote!(__B: #sh::shape::Dim));
    let (impl_gb, _, _) = g.split_for_impl();

    let dims: Vec<TokenStream> = m.input.iter().map(|e| quote!(#sh::shape::Const<{ #e }>)).collect();
    let input_shape = |batch: TokenStream| quote!((#batch, #(#dims),*));
    let s0 = input_shape(quote!(__B));

    // S_i: the input shape of layer i (S_0 is the model input); S_n is the output.
    let mut shapes = vec![s0.clone()];
    for (i, ty) in tys.iter().enumerate() {
        let prev = &shapes[i];
        let span = ty.span();
        shapes.push(quote_spanned!(span=> <#ty as #sh::Layer<#prev, #elem>>::Out));
    }
    let out_shape = &shapes[n];

    // Cache: (Step<S_1, C_0>, (Step<S_2, C_1>, ... (C_{n-1}, ())))
    let mut cache_ty = quote!(());
    for i in (0..n).rev() {
        let ty = tys[i];
        let sin = &shapes[i];
        let span = ty.span();
        let c = quote_spanned!(span=> <#ty as #sh::Layer<#sin, #elem>>::Cache);
        if i == n - 1 {
            cache_ty = quote!((#c, #cache_ty));
        } else {
            let sout = &shapes[i + 1];
            cache_ty = quote!((#sh::layer::Step<#sout, #c, #elem>, #cache_ty));
        }
    }

    // Destructuring of the cache into s0, s1, ..., last.
    let step_ids: Vec<_> = (0..n).map(|i| format_ident!("__s{}", i)).collect();
    let mut destructure = TokenStream::new();
    let mut rest = format_ident!("__cache");
    for (i, sid) in step_ids.iter().enumerate() {
        let next = format_ident!("__rest{}", i);
        destructure.extend(quote!(let (#sid, #next) = #rest;));
        rest = next;
    }
    let last_rest = rest;

    // forward (eval): fresh intermediates.
    let mut fwd = TokenStream::new();
    for i in 0..n {
        let (ty, name, sin) = (tys[i], names[i], &shapes[i]);
        let span = ty.span();
        let input = if i == 0 {
            quote!(x)
        } else {
            let h = format_ident!("__h{}", i - 1);
            quote!(&#h)
        };
        if i == n - 1 {
            fwd.extend(quote_spanned!(span=> <#ty as #sh::Layer<#sin, #elem>>::forward(&self.#name, #input, y);));
        } else {
            let h = format_ident!("__h{}", i);
            let sout = &shapes[i + 1];
            fwd.extend(quote_spanned!(span=>
                let mut #h = #sh::Tensor::<#sout, #elem>::zeros(x.batch());
                <#ty as #sh::Layer<#sin, #elem>>::forward(&self.#name, #input, &mut #h);
            ));
        }
    }

    // forward_train: intermediates in the cache.
    let mut fwd_train = TokenStream::new();
    for i in 0..n {
        let (ty, name, sin, sid) = (tys[i], names[i], &shapes[i], &step_ids[i]);
        let span = ty.span();
        let input = if i == 0 {
            quote!(x)
        } else {
            let p = &step_ids[i - 1];
            quote!(&#p.out)
        };
        if i == n - 1 {
            fwd_train.extend(quote_spanned!(span=>
                <#ty as #sh::Layer<#sin, #elem>>::forward_train(&mut self.#name, #input, y, #sid);));
        } else {
            fwd_train.extend(quote_spanned!(span=>
                <#ty as #sh::Layer<#sin, #elem>>::forward_train(&mut self.#name, #input, &mut #sid.out, &mut #sid.cache);));
        }
    }

    // backward, last layer first.
    let mut bwd = TokenStream::new();
    for i in (0..n).rev() {
        let (ty, name, sin, sid) = (tys[i], names[i], &shapes[i], &step_ids[i]);
        let span = ty.span();
        let (input, dx) = if i == 0 {
            (quote!(x), quote!(dx))
        } else {
            let p = &step_ids[i - 1];
            (quote!(&#p.out), quote!(::core::option::Option::Some(&mut #p.grad)))
        };
        let (out, dy, cache) = if i == n - 1 {
            (quote!(y), quote!(dy), quote!(#sid))
        } else {
            (quote!(&#sid.out), quote!(&#sid.grad), quote!(&mut #sid.cache))
        };
        bwd.extend(quote_spanned!(span=>
            <#ty as #sh::Layer<#sin, #elem>>::backward(&self.#name, #input, #out, #dy, #cache, #dx, &mut grads.#name);));
    }

    // Summary rows: output shapes with a concrete batch.
    let mut summary_shapes = vec![input_shape(quote!(#sh::shape::Dyn))];
    for (i, ty) in tys.iter().enumerate() {
        let prev = summary_shapes[i].clone();
        summary_shapes.push(quote!(<#ty as #sh::Layer<#prev, #elem>>::Out));
    }
    let row_shapes = &shapes[1..];
    let summary_in = &summary_shapes[0];
    let seeds: Vec<u64> = (0..n as u64).collect();

    // `<Field as Module<E>>`, at the field's span: a field that is not a layer is reported there.
    let module_paths: Vec<TokenStream> = tys
        .iter()
        .map(|ty| {
            let span = ty.span();
            quote_spanned!(span=> <#ty as #sh::Module<#elem>>)
        })
        .collect();
    let module_checks = tys.iter().map(|ty| {
        let span = ty.span();
        quote_spanned!(span=> <#ty as #sh::Module<#elem>>::zeros)
    });

    // One assertion per layer, in order, each at its field's span: a layer that does not fit is
    // reported here first, at its own field.
    let checks = tys.iter().enumerate().map(|(i, ty)| {
        let sin = &shapes[i];
        let span = ty.span();
        quote_spanned!(span=> __shaped_fits::<#ty, #sin, #elem>();)
    });

    // The impls assume each step fits (so a mismatch is reported once, by `__shaped_check`, at the
    // field, not again in every item that mentions the shapes).
    let assume: Vec<TokenStream> = tys
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            let sin = &shapes[i];
            let span = ty.span();
            quote_spanned!(span=> for<'__shaped> #ty: #sh::Layer<#sin, #elem>,)
        })
        .collect();
    quote! {
        const _: () = {
            #[allow(dead_code, non_snake_case)]
            fn __shaped_check #impl_gb () where #where_preds {
                fn __shaped_fits<L: #sh::Layer<I, __E>, I: #sh::shape::Shape, __E: #sh::kernels::Elem>() {}
                #(#checks)*
            }

            #[automatically_derived]
            impl #impl_g #sh::Module<#elem> for #ident #ty_g #where_c {
                fn zeros() -> Self {
                    #ident { #( #names: #module_checks(), )* }
                }
                fn visit_params(&self, path: &#sh::Path<'_>, f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &[#elem])) {
                    #( #module_paths::visit_params(&self.#names, &path.child(#name_strs), f); )*
                }
                fn visit_params_mut(&mut self, path: &#sh::Path<'_>, f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &mut [#elem])) {
                    #( #module_paths::visit_params_mut(&mut self.#names, &path.child(#name_strs), f); )*
                }
                fn zip_params_mut(
                    &mut self,
                    other: &Self,
                    path: &#sh::Path<'_>,
                    f: &mut dyn FnMut(&#sh::ParamInfo<'_>, &mut [#elem], &[#elem]),
                ) {
                    #( #module_paths::zip_params_mut(&mut self.#names, &other.#names, &path.child(#name_strs), f); )*
                }
                fn reseed(&mut self, seed: u64) {
                    #( #module_paths::reseed(&mut self.#names, #sh::layer::mix_seed(seed, #seeds)); )*
                }
                fn type_name() -> ::std::string::String {
                    ::std::string::String::from(stringify!(#ident))
                }
            }

            #[automatically_derived]
            impl #impl_gb #sh::Layer<#s0, #elem> for #ident #ty_g where #where_preds #(#assume)* {
                type Out = #out_shape;
                type Cache = #cache_ty;

                fn forward(&self, x: &#sh::Tensor<#s0, #elem>, y: &mut #sh::Tensor<Self::Out, #elem>) {
                    #fwd
                }

                fn forward_train(
                    &mut self,
                    x: &#sh::Tensor<#s0, #elem>,
                    y: &mut #sh::Tensor<Self::Out, #elem>,
                    __cache: &mut Self::Cache,
                ) {
                    #destructure
                    let _ = #last_rest;
                    #fwd_train
                }

                fn backward(
                    &self,
                    x: &#sh::Tensor<#s0, #elem>,
                    y: &#sh::Tensor<Self::Out, #elem>,
                    dy: &#sh::Tensor<Self::Out, #elem>,
                    __cache: &mut Self::Cache,
                    dx: ::core::option::Option<&mut #sh::Tensor<#s0, #elem>>,
                    grads: &mut Self,
                ) {
                    #destructure
                    let _ = #last_rest;
                    #bwd
                }

                fn summary_rows(&self) -> ::std::vec::Vec<#sh::layer::SummaryRow> {
                    ::std::vec![#(
                        #sh::layer::SummaryRow {
                            field: #name_strs,
                            layer: #module_paths::type_name(),
                            output: #sh::layer::sample_dims::<#row_shapes>(),
                            params: #module_paths::num_params(&self.#names),
                        },
                    )*]
                }
            }

            #[automatically_derived]
            impl #impl_g ::core::fmt::Display for #ident #ty_g where #where_preds for<'__shaped> Self: #sh::Layer<#summary_in, #elem> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #sh::layer::write_summary(
                        f,
                        stringify!(#ident),
                        &#sh::layer::sample_dims::<#summary_in>(),
                        &<Self as #sh::Layer<#summary_in, #elem>>::summary_rows(self),
                    )
                }
            }
        };
    }
}
