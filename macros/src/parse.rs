//! Reads and validates a `#[derive(Sequential)]` struct into a [`Model`].

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, GenericParam, Ident, Type};

/// A validated sequential model: its fields in order and its attribute options.
pub struct Model<'a> {
    /// The struct.
    pub ast: &'a DeriveInput,
    /// The layers, in order.
    pub fields: Vec<(&'a Ident, &'a Type)>,
    /// The sample shape (without the batch dimension), one expression per extent, if declared.
    pub input: Option<Dims>,
    /// The output sample shape, if declared.
    pub output: Option<Dims>,
    /// The element type.
    pub elem: Type,
    /// Whether the shapes can be checked where the struct is defined: it has no generic parameters
    /// other than its element type.
    pub concrete: bool,
}

/// A declared shape: its extents and the span of the attribute that declared it.
pub struct Dims {
    pub exprs: Vec<Expr>,
    pub span: proc_macro2::Span,
}

fn dims_of(value: Expr, what: &str, span: proc_macro2::Span) -> syn::Result<Dims> {
    let exprs = match value {
        Expr::Tuple(t) => t.elems.into_iter().collect::<Vec<_>>(),
        Expr::Paren(p) => vec![*p.expr],
        other => vec![other],
    };
    if exprs.is_empty() || exprs.len() > 3 {
        return Err(syn::Error::new(
            span,
            format!(
                "`{what}` is the sample shape without the batch: 1 to 3 extents, e.g. `{what} = (1, 28, 28)` or `{what} = (784,)`"
            ),
        ));
    }
    for e in &exprs {
        if let Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) = e
            && i.base10_parse::<u128>().is_ok_and(|v| v == 0)
        {
            return Err(syn::Error::new(e.span(), format!("`{what}` has an extent 0; every extent is at least 1")));
        }
    }
    Ok(Dims { exprs, span })
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

        let mut input: Option<Dims> = None;
        let mut output: Option<Dims> = None;
        let mut elem: Option<Type> = None;
        for attr in ast.attrs.iter().filter(|a| a.path().is_ident("sequential")) {
            attr.parse_nested_meta(|meta| {
                let span = meta.path.span();
                if meta.path.is_ident("input") || meta.path.is_ident("output") {
                    let is_input = meta.path.is_ident("input");
                    let what = if is_input { "input" } else { "output" };
                    let slot = if is_input { &mut input } else { &mut output };
                    if slot.is_some() {
                        return Err(
                            meta.error(format!("`{what}` is given twice; declare the model's {what} shape once"))
                        );
                    }
                    let value: Expr = meta.value()?.parse()?;
                    *slot = Some(dims_of(value, what, span)?);
                    Ok(())
                } else if meta.path.is_ident("elem") {
                    if elem.is_some() {
                        return Err(meta.error("`elem` is given twice; declare the element type once"));
                    }
                    elem = Some(meta.value()?.parse::<Type>()?);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown option: #[sequential(...)] takes `input = (...)`, `output = (...)` and `elem = T`",
                    ))
                }
            })?;
        }
        let elem = elem.unwrap_or_else(|| syn::parse_quote!(f32));
        let elem_ident = match &elem {
            Type::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
            _ => None,
        };
        let concrete = ast.generics.params.iter().all(|p| match p {
            GenericParam::Type(t) => elem_ident.as_ref() == Some(&t.ident),
            _ => false,
        });
        if input.is_none() && concrete && ast.generics.params.is_empty() && output.is_some() {
            return Err(syn::Error::new(
                ast.ident.span(),
                "#[sequential(output = ...)] needs the input shape too: add `input = (...)`",
            ));
        }
        Ok(Model { ast, fields, input, output, elem, concrete })
    }

    /// The element type's name when it is one of the struct's type parameters.
    pub fn elem_param(&self) -> Option<&Ident> {
        let Type::Path(p) = &self.elem else { return None };
        let id = p.path.get_ident()?;
        self.ast.generics.type_params().any(|t| &t.ident == id).then_some(id)
    }
}
