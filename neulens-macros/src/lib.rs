//! The `#[neulens_model]` attribute macro: a thin front over `neulens-codegen` (like serde_derive
//! over its internals). It parses its arguments, runs the shared pipeline and turns every
//! diagnostic of the spec into a `compile_error!` with the best span it has. It never panics.

use neulens_codegen::emit::{BlobRef, EmitOptions};
use neulens_codegen::{compile, load_model, Diagnostics};
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use std::path::PathBuf;
use syn::parse::{Parse, ParseStream};
use syn::{Item, LitStr, Token};

/// Compiles a model spec into the annotated module.
///
/// ```ignore
/// #[neulens::neulens_model(spec = "specs/net.yaml")]   // path relative to CARGO_MANIFEST_DIR
/// pub mod net {}
///
/// #[neulens::neulens_model(inline = r#"
/// input: { channels: 1, height: 8, width: 8 }
/// weights: { random: 1 }
/// layers: [ { name: c1, op: conv, out: 4, kernel: 3, pad: 1, act: relu } ]
/// "#)]
/// pub mod tiny {}
/// ```
/// The module receives the same items as the build.rs path (`infer`, `ARENA_LEN`, `Model`, ...).
/// The crate rebuilds when the spec or the weights change. The weight blob goes to `OUT_DIR` when
/// the crate has a build script, else it is embedded as one byte-string literal.
#[proc_macro_attribute]
pub fn neulens_model(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

enum Source {
    File(LitStr),
    Inline(LitStr),
}

struct Args {
    source: Source,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut source = None;
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            let s = match key.to_string().as_str() {
                "spec" => Source::File(value),
                "inline" => Source::Inline(value),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{other}`: expected `spec = \"path.yaml\"` or `inline = \"yaml\"`"),
                    ))
                }
            };
            if source.is_some() {
                return Err(syn::Error::new(
                    key.span(),
                    "give exactly one of `spec` and `inline`",
                ));
            }
            source = Some(s);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        match source {
            Some(source) => Ok(Args { source }),
            None => Err(syn::Error::new(
                Span::call_site(),
                "missing the model: write #[neulens_model(spec = \"specs/net.yaml\")] or #[neulens_model(inline = \"...\")]",
            )),
        }
    }
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args: Args = syn::parse2(attr)?;
    let item: Item = syn::parse2(item)?;
    let Item::Mod(mut module) = item else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[neulens_model] goes on an inline module: `pub mod net {}`",
        ));
    };
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let (text, label, base, lit, spec_path) = match &args.source {
        Source::File(lit) => {
            let rel = lit.value();
            let path = root.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                syn::Error::new(
                    lit.span(),
                    format!("{rel}: cannot read the spec (relative to the crate root): {e}"),
                )
            })?;
            let base = path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| root.clone());
            (text, rel, base, lit, Some(path))
        }
        Source::Inline(lit) => (
            lit.value(),
            "<inline spec>".to_string(),
            root.clone(),
            lit,
            None,
        ),
    };
    let to_err = |d: Diagnostics| -> syn::Error {
        let mut it = d.items.iter();
        let mut err = match it.next() {
            Some(first) => syn::Error::new(lit.span(), first.without_severity()),
            None => syn::Error::new(lit.span(), "unknown error"),
        };
        for more in it {
            err.combine(syn::Error::new(lit.span(), more.without_severity()));
        }
        err
    };
    let loaded = load_model(&text, &label, &base).map_err(to_err)?;
    let blob_ref = match std::env::var_os("OUT_DIR") {
        Some(out) => {
            let dir = PathBuf::from(out).join("neulens-macro");
            let path = dir.join(format!("{}.weights.bin", loaded.graph.name));
            BlobRef::Path(path.display().to_string())
        }
        None => BlobRef::Inline,
    };
    let compiled = compile(&loaded, &label, &EmitOptions::new(blob_ref.clone())).map_err(to_err)?;
    if let BlobRef::Path(p) = &blob_ref {
        let p = PathBuf::from(p);
        let write = p
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| {
                if std::fs::read(&p).ok().as_deref() != Some(&compiled.emitted.blob[..]) {
                    std::fs::write(&p, &compiled.emitted.blob)
                } else {
                    Ok(())
                }
            });
        if let Err(e) = write {
            return Err(syn::Error::new(
                lit.span(),
                format!("cannot write the weight blob {}: {e}", p.display()),
            ));
        }
    }
    // Rebuild when the spec or the weights change: include_bytes! makes them inputs of the crate.
    let mut deps = Vec::new();
    if let Some(p) = spec_path {
        let p = p.display().to_string();
        deps.push(quote!(
            const _: &[u8] = include_bytes!(#p);
        ));
    }
    if let Some(w) = &loaded.weights_file {
        let p = w.display().to_string();
        deps.push(quote!(
            const _: &[u8] = include_bytes!(#p);
        ));
    }
    let generated = compiled.emitted.tokens;
    let existing = module
        .content
        .take()
        .map(|(_, items)| items)
        .unwrap_or_default();
    let attrs = &module.attrs;
    let vis = &module.vis;
    let ident = &module.ident;
    Ok(quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#deps)*
            #generated
            #(#existing)*
        }
    })
}
