//! Issue 14, item 2: property-based API fuzzing against `spec/openapi.json` with
//! schemathesis (tests/api/README.md), an implementation civis did not write. It generates
//! requests from the description — valid ones and ones that break it — sends them to the real
//! server with the admin token, and fails on any 5xx and on any answer the description does
//! not allow (status, content type, headers, body schema), and on a method not described
//! that is not refused with 405.

use std::path::PathBuf;
use std::process::Command;

use crate::driver::{Opts, start, tempdir};
use crate::formats::prerequisites;
use crate::support::{admin_token, root};

const SETUP: &str = "tests/api/setup.sh";

fn schemathesis() -> PathBuf {
    root().join("tests/api/.venv/bin/schemathesis")
}

#[tokio::test]
async fn the_api_answers_as_its_description_says_under_generated_input() {
    let runs = Command::new(schemathesis())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if runs {
        vec![]
    } else {
        vec![format!("schemathesis in {}", schemathesis().display())]
    };
    if !prerequisites(
        "the_api_answers_as_its_description_says_under_generated_input",
        SETUP,
        missing,
    ) {
        return;
    }
    let data = tempdir();
    // Generated input fails most of the time; the failure buckets would soon answer 429
    // to everything, which tests the throttle instead of the endpoints.
    let server = start(
        &data,
        Opts::plain().with_args([
            "--throttle-burst",
            "1000000",
            "--throttle-per-minute",
            "1000000",
        ]),
    );
    let url = server.url.clone();
    let out = crate::support::outside_runtime(|| {
        Command::new(schemathesis())
            .current_dir(root().join("tests/api"))
            .args(["--config-file", "schemathesis.toml"])
            .args(["run", "../../spec/openapi.json", "--url", &url])
            .args(["-H", &format!("Authorization: Bearer {}", admin_token())])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    // The run did test every described operation.
    assert!(report.contains("Tested:"), "{report}");
    drop(server);
}
