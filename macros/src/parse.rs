//! Reads and validates a `#[derive(Sequential)]` struct into a [`Model`].

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, Ident, Type};

/// A validated sequential model: its fields in order and its attribute options.
pub struct Model<'a> {
    /// The struct.
    pub ast: &'a DeriveInput,
    /// The layers, in order.
    pub fields: Vec<(&'a Ident, &'a Type)>,
    /// The sample shape (without the batch dimension), one expression per extent.
    pub input: Vec<Expr>,
    /// The element type.
    pub elem: Type,
}

impl<'a> Model<'a> {
    pub fn from_ast(ast: &'a DeriveInput) -> syn::Result<Self> {
        let named = match &ast.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(n) => n,
                Fields::Unnamed(u) => {
                    return Err(syn::Error::new(
                        u.span(),
                        "#[derive(Sequential)] needs named fields (the field names become parameter paths such as `fc1.weight`)",
                    ));
                }
                Fields::Unit => {
                    return Err(syn::Error::new(
                        ast.ident.span(),
                        "#[derive(Sequential)] needs at least one layer field",
                    ));
                }
            },
            Data::Enum(e) => {
                return Err(syn::Error::new(
                    e.enum_token.span,
                    "#[derive(Sequential)] works on structs whose fields are layers, not on enums",
                ));
            }
            Data::Union(u) => {
                return Err(syn::Error::new(
                    u.union_token.span,
                    "#[derive(Sequential)] works on structs whose fields are layers, not on unions",
                ));
            }
        };
        if named.named.is_empty() {
            return Err(syn::Error::new(ast.ident.span(), "#[derive(Sequential)] needs at least one layer field"));
        }
        let fields =
            named.named.iter().map(|f| (f.ident.as_ref().expect("named fields have identifiers"), &f.ty)).collect();

        let mut input = None;
        let mut elem = None;
        for attr in ast.attrs.iter().filter(|a| a.path().is_ident("sequential")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("input") {
                    let value: Expr = meta.value()?.parse()?;
                    let dims = match value {
                        Expr::Tuple(t) => t.elems.into_iter().collect::<Vec<_>>(),
                        Expr::Paren(p) => vec![*p.expr],
                        other => vec![other],
                    };
                    if dims.is_empty() || dims.len() > 3 {
                        return Err(meta.error("`input` is the sample shape without the batch: 1 to 3 extents, e.g. `input = (1, 28, 28)` or `input = (784,)`"));
                    }
                    input = Some(dims);
                    Ok(())
                } else if meta.path.is_ident("elem") {
                    elem = Some(meta.value()?.parse::<Type>()?);
                    Ok(())
                } else {
                    Err(meta.error("unknown option: #[sequential(...)] takes `input = (...)` and `elem = T`"))
                }
            })?;
        }
        let input = input.ok_or_else(|| {
            syn::Error::new(
                ast.ident.span(),
                "#[derive(Sequential)] needs the model's input shape: add #[sequential(input = (1, 28, 28))] (the sample shape, without the batch)",
            )
        })?;
        let elem = elem.unwrap_or_else(|| syn::parse_quote!(f32));
        Ok(Model { ast, fields, input, elem })
    }
}
