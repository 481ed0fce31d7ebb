//! Reading an invite's QR code with the camera, where the browser offers `BarcodeDetector`
//! (Chrome on Android does); typing the code always works without it.

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlVideoElement, MediaStream, MediaStreamConstraints};

/// Whether this browser can scan QR codes with a camera.
pub(super) fn available() -> bool {
    let Some(window) = web_sys::window() else { return false };
    Reflect::has(&window, &"BarcodeDetector".into()).unwrap_or(false)
        && window.navigator().media_devices().is_ok()
}

/// The invite code in what a QR code held: the join link's `ma` parameter, or a bare code.
pub(super) fn code_from_scan(text: &str) -> Option<String> {
    let text = text.trim();
    let code = match text.split_once("ma=") {
        Some((_, rest)) => rest.split(['&', '#']).next().unwrap_or_default(),
        None => text,
    };
    let clean: String = code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    (clean.len() >= 12 && clean.len() <= 20 && clean.len() == code.len()).then_some(clean)
}

fn js_err(what: &'static str) -> impl Fn(JsValue) -> String {
    move |e| format!("{what}: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Shows the back camera in `video` until a QR code is seen; returns its text. The camera is
/// released whatever happens.
pub(super) async fn scan(video: &HtmlVideoElement) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let devices = window.navigator().media_devices().map_err(js_err("camera"))?;
    let constraints = MediaStreamConstraints::new();
    let facing = js_sys::Object::new();
    Reflect::set(&facing, &"facingMode".into(), &"environment".into()).map_err(js_err("camera"))?;
    constraints.set_video(&facing);
    let asked = devices.get_user_media_with_constraints(&constraints).map_err(js_err("camera"))?;
    let stream: MediaStream = JsFuture::from(asked).await.map_err(js_err("camera"))?.unchecked_into();
    video.set_src_object(Some(&stream));
    let found = detect_loop(&window, video).await;
    for track in stream.get_tracks() {
        track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
    }
    video.set_src_object(None);
    found
}

async fn detect_loop(window: &web_sys::Window, video: &HtmlVideoElement) -> Result<String, String> {
    if let Ok(p) = video.play() {
        let _ = JsFuture::from(p).await;
    }
    let ctor: Function =
        Reflect::get(window, &"BarcodeDetector".into()).map_err(js_err("scanner"))?.unchecked_into();
    let options = js_sys::Object::new();
    Reflect::set(&options, &"formats".into(), &Array::of1(&"qr_code".into())).map_err(js_err("scanner"))?;
    let detector = Reflect::construct(&ctor, &Array::of1(&options)).map_err(js_err("scanner"))?;
    let detect: Function =
        Reflect::get(&detector, &"detect".into()).map_err(js_err("scanner"))?.unchecked_into();
    // A camera frame about five times a second, for up to two minutes.
    for _ in 0..600 {
        let codes = detect.call1(&detector, video).map_err(js_err("scanner"))?;
        let codes = JsFuture::from(Promise::from(codes)).await.unwrap_or(JsValue::UNDEFINED);
        let first = codes.dyn_ref::<Array>().map(|a| a.get(0)).filter(|v| !v.is_undefined());
        if let Some(text) = first.and_then(|f| Reflect::get(&f, &"rawValue".into()).ok()?.as_string()) {
            return Ok(text);
        }
        let tick = Promise::new(&mut |resolve, _| {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 200);
        });
        let _ = JsFuture::from(tick).await;
    }
    Err("no QR code seen".into())
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::code_from_scan;

    wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    fn a_scanned_join_link_or_bare_code_gives_the_code() {
        let link = "http://relay.example:8080/tham-gia?ma=HECM-9NPR-4SVE";
        assert_eq!(code_from_scan(link).as_deref(), Some("HECM-9NPR-4SVE"));
        assert_eq!(code_from_scan(" HECM-9NPR-4SVE\n").as_deref(), Some("HECM-9NPR-4SVE"));
        assert_eq!(code_from_scan("http://x/tham-gia?ma=HECM9NPR4SVE&x=1").as_deref(), Some("HECM9NPR4SVE"));
        assert_eq!(code_from_scan("https://example.com/"), None);
    }
}
