//! Fuzzes what the connector does with bytes a device sends: escape
//! stripping, output cleaning, the last line where prompts live, and every
//! platform's prompt, pager and failure matching.
//!
//! Input layout: the first byte picks a platform; the bytes up to the next
//! NUL are the command as sent; the rest is the device's transcript. Beyond
//! "never panics", each step checks a property the session layer relies on.

#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use netbox_toolkit::connector::text::{self, TAIL_BYTES};
use netbox_toolkit::connector::{Platform, PlatformRegistry};

static PLATFORMS: LazyLock<Vec<Arc<Platform>>> = LazyLock::new(|| {
    let registry = PlatformRegistry::load(&[]).expect("the built-in platform table loads");
    registry
        .slugs()
        .iter()
        .map(|slug| registry.resolve(Some(slug), None).expect("a listed slug resolves"))
        .collect()
});

/// Commands come from the catalogue and are short; longer ones only measure
/// how slowly a regex of that size compiles.
const MAX_COMMAND_BYTES: usize = 512;

// The platform table compiles dozens of patterns, slow under the sanitizer:
// done once before fuzzing so it never counts against an input's time limit.
fuzz_target!(init: { LazyLock::force(&PLATFORMS); }, |data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let platform = &PLATFORMS[usize::from(selector) % PLATFORMS.len()];
    let (command, transcript) = match rest.iter().position(|&b| b == 0) {
        Some(nul) if nul <= MAX_COMMAND_BYTES => {
            (String::from_utf8_lossy(&rest[..nul]), &rest[nul + 1..])
        }
        Some(_) => return,
        None => ("show version".into(), rest),
    };

    cleaning_leaves_no_carriage_returns(transcript);
    let last = last_line_is_one_trimmed_line(transcript);
    prompt_matching_never_fails(platform, &last, transcript);
    command_output_is_trimmed(platform, &command, transcript);
});

fn cleaning_leaves_no_carriage_returns(raw: &[u8]) {
    let cleaned = text::clean(raw);
    assert!(!cleaned.contains('\r'), "clean kept a CR: {cleaned:?}");
    let tail = text::tail(raw, TAIL_BYTES);
    assert!(!tail.contains('\r'), "tail kept a CR: {tail:?}");
}

fn last_line_is_one_trimmed_line(raw: &[u8]) -> String {
    let last = text::last_line(raw);
    assert!(!last.contains('\n'), "last_line spans lines: {last:?}");
    assert_eq!(last, last.trim_end(), "last_line is not trimmed");
    last
}

fn prompt_matching_never_fails(platform: &Platform, last: &str, raw: &[u8]) {
    // The session layer asks these of every line it reads; they must answer,
    // quickly, whatever the device printed.
    let _ = platform.is_prompt(last);
    let _ = platform.is_exec_prompt(last);
    let _ = platform.is_config_prompt(last);
    let _ = platform.is_pager(last);
    let _ = platform.failure_in(&text::clean(raw));
}

fn command_output_is_trimmed(platform: &Platform, command: &str, raw: &[u8]) {
    let output = text::command_output(raw, command, Some(&platform.pager));
    assert_eq!(output, output.trim_end(), "output ends in blanks");
    assert!(!output.contains('\r'), "output kept a CR: {output:?}");
    let first = output.split('\n').next().unwrap_or_default();
    assert!(
        output.is_empty() || !first.trim().is_empty(),
        "output starts with a blank line: {output:?}"
    );
}
