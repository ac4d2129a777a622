//! Best-of-N end to end: `--attempts 3` runs three attempts side by side in their own sandboxes
//! and workspaces, ranks them by their evidence, and opens one pull request from the best, with a
//! table of all of them.

mod support;

use errand::job::JobStatus;
use support::world::{REPO, World, errand_toml};

/// Attempt 1 breaks the check (2 * 3 is not 5), attempt 2 fixes it with a large diff, attempt 3
/// fixes it with a small one.
const THREE_WAYS_AGENT: &str = r#"case "$ERRAND_ATTEMPT" in
  1) sed -i 's/\$1 - \$2/$1 * $2/' calc.sh ;;
  2) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && seq 1 60 > padding.txt ;;
  *) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh ;;
esac
printf 'Attempt %s\n\nThe change of attempt %s.\n' "$ERRAND_ATTEMPT" "$ERRAND_ATTEMPT" > "$ERRAND_SUMMARY_FILE""#;

#[tokio::test]
async fn three_attempts_run_side_by_side_and_the_small_passing_one_becomes_the_pull_request() {
    let world = World::start(&errand_toml(THREE_WAYS_AGENT, "2m")).await;
    assert_eq!(world.comment(1, "octocat", "@agent fix this --attempts 3", "delivery-3").await, 202);
    assert_eq!(world.drain().await, 1, "one job for three attempts");

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "one pull request");
    let pull = &pulls[0];
    assert_eq!(pull.title, "Attempt 3");
    assert_eq!(world.github.file_at(REPO, &pull.head, "calc.sh").as_deref(), Some("add() { echo $(( $1 + $2 )); }\n"));
    assert_eq!(world.github.file_at(REPO, &pull.head, "padding.txt"), None, "not the large attempt");

    let attempts = pull.body.split("## Attempts").nth(1).expect("an attempts section");
    let attempts = attempts.split("\n---\n").next().unwrap_or_default().trim();
    assert!(attempts.contains("| ★ | 3 | 1/1 | 1 file, 2 lines |"), "{attempts}");
    assert!(attempts.contains("|  | 1 | 0/1 | 1 file, 2 lines |"), "{attempts}");
    assert!(attempts.contains("|  | 2 | 1/1 | 2 files, 62 lines |"), "{attempts}");
    for n in [1, 2, 3] {
        let branch = format!("{}-a{n}", pull.head);
        assert!(attempts.contains(&format!("`{branch}`")), "attempt {n}'s branch is named: {attempts}");
        assert!(world.github.branches(REPO).contains(&branch), "attempt {n}'s work is pushed to {branch}");
    }
    assert_eq!(
        world.github.file_at(REPO, &format!("{}-a2", pull.head), "padding.txt").map(|t| t.lines().count()),
        Some(60)
    );
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9a-f]{8}-a", "[job]-a");
    settings.add_filter(r"\| \d+(\.\d+)?m?s \|", "| [duration] |");
    settings.bind(|| insta::assert_snapshot!("attempts_section", attempts));

    let jobs = world.jobs().await;
    assert_eq!((jobs.len(), jobs[0].state.status()), (1, JobStatus::Succeeded));

    // A reviewer prefers the large one: it replaces the change in the same pull request.
    assert_eq!(world.comment(pull.number, "octocat", "@agent use attempt 2 instead", "delivery-use-2").await, 202);
    assert_eq!(world.drain().await, 1);
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "still one pull request");
    let pull = &pulls[0];
    assert_eq!(world.github.file_at(REPO, &pull.head, "padding.txt").map(|t| t.lines().count()), Some(60));
    assert_eq!(world.github.branch_log(REPO, &pull.head)[0], "Attempt 2");
    assert!(pull.body.contains("| ★ | 2 | 1/1 |") && pull.body.contains("|  | 3 | 1/1 |"), "{}", pull.body);
    assert_eq!(pull.body.matches("<!-- errand:testing -->").count(), 1);
    assert!(pull.body.contains("| ✅ | test | `sh test.sh` | 0 |"), "the checks ran on attempt 2: {}", pull.body);
    let answer = world.github.comments(REPO, pull.number).into_iter().find(|c| c.body.contains("Now attempt 2"));
    assert!(answer.expect("an answer on the pull request").body.contains("✅ **Done**: pushed `"));

    assert_eq!(world.comment(pull.number, "octocat", "@agent use attempt 7", "delivery-use-7").await, 202);
    world.drain().await;
    let refused = world.github.comments(REPO, pull.number).into_iter().find(|c| c.body.contains("no attempt 7"));
    assert!(refused.is_some(), "{:#?}", world.github.comments(REPO, pull.number));
    assert_eq!(world.github.branch_log(REPO, &pull.head)[0], "Attempt 2", "nothing moved");
}
