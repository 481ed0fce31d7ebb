//! A blank Leptos page: one paragraph, then `performance.mark("chibo-interactive")`. xtask builds
//! it through the app's pipeline (same profile, wasm-bindgen, wasm-opt, the app's `index.html` and
//! `sw.js`) into `target/blank-dist/`, and `tests/it/startup.rs` times its start from the
//! service-worker cache against the member app's, in the same run (`cargo xtask measure-startup`).

#[cfg(target_arch = "wasm32")]
fn main() {
    use leptos::prelude::*;

    leptos::mount::mount_to_body(|| view! { <p data-testid="hello">"Xin chào"</p> });
    // Mounting is synchronous: the paragraph is in the document now.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("chibo-interactive");
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("chibo-blank-page is a web page: `cargo xtask measure-startup` builds it for wasm32");
}
