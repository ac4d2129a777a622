//! The real Docker engine for tests, with the sandbox test image built from the host's busybox
//! (`deploy/sandbox-test-image/build.sh`); tests that need it fail loudly when it is missing.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use errand::job::JobId;
use errand::sandbox::Sandbox;

/// The image every sandbox and scenario test runs in: static busybox, no registry needed.
pub const TEST_IMAGE: &str = "errand-sandbox-test:latest";

/// A sandbox on the local engine, after checking that [`TEST_IMAGE`] is there. Panics (never
/// skips) with what to do when the engine or the image is missing.
pub async fn sandbox_with_test_image() -> Sandbox {
    let sandbox = Sandbox::connect()
        .await
        .unwrap_or_else(|error| panic!("tests need Docker: start the engine (or set DOCKER_HOST). {error:#}"));
    match sandbox.image_exists(TEST_IMAGE).await {
        Ok(true) => sandbox,
        Ok(false) => {
            panic!("the image {TEST_IMAGE} is missing: build the test image: deploy/sandbox-test-image/build.sh")
        }
        Err(error) => panic!("tests need Docker: asking the engine for {TEST_IMAGE} failed: {error:#}"),
    }
}

/// A bollard client of the test's own, to look at the engine without the code under test.
pub async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect("a Docker client")
        .negotiate_version()
        .await
        .expect("tests need Docker: start the engine")
}

/// The ids of all containers (running or not) labelled with `job`.
pub async fn containers_of_job(docker: &Docker, job: &JobId) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("errand.job={job}")])]);
    docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("listing containers")
        .into_iter()
        .filter_map(|container| container.id)
        .collect()
}
