//! Best-of-N: attempts ranked by their evidence, not by luck. The order, best first: a change
//! that can be pushed (one holding a secret errand knows never is); every check passes; more
//! checks pass; the agent finished; the attempt changed something; the smaller diff
//! (lines added plus removed); the lower attempt number, so ties always break the same way.

use std::cmp::Reverse;

use super::{AgentEnd, Outcome};

/// What one attempt is ranked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub checks_passed: usize,
    pub checks_total: usize,
    pub agent_finished: bool,
    pub changed: bool,
    pub files_changed: usize,
    pub lines_changed: usize,
    /// The change holds a secret errand knows: it is never pushed.
    pub holds_secret: bool,
}

impl Score {
    pub fn of(outcome: &Outcome) -> Self {
        let (files_changed, lines_changed) = diff_size(&outcome.diffstat);
        Self {
            checks_passed: outcome.checks.iter().filter(|c| c.passed()).count(),
            checks_total: outcome.checks.len(),
            agent_finished: outcome.agent_end == AgentEnd::Finished,
            changed: outcome.commit.is_some(),
            files_changed,
            lines_changed,
            holds_secret: !outcome.files_with_secrets.is_empty(),
        }
    }

    /// Only an attempt whose agent finished can have passed all its checks (an attempt whose
    /// agent failed runs no checks).
    pub fn all_checks_pass(&self) -> bool {
        self.agent_finished && self.checks_passed == self.checks_total
    }
}

/// The attempts' indices, best first.
pub fn rank(scores: &[Score]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by_key(|&i| {
        let s = &scores[i];
        (
            s.holds_secret,
            Reverse(s.all_checks_pass()),
            Reverse(s.checks_passed),
            Reverse(s.agent_finished),
            Reverse(s.changed),
            s.lines_changed,
            i,
        )
    });
    order
}

/// Files and lines (added plus removed) from the summary line of `git diff --stat`.
pub fn diff_size(diffstat: &str) -> (usize, usize) {
    let Some(summary) = diffstat.lines().rev().find(|l| l.contains("changed")) else { return (0, 0) };
    let mut files = 0;
    let mut lines = 0;
    for part in summary.split(',') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(word)) = (words.next().and_then(|n| n.parse::<usize>().ok()), words.next()) else {
            continue;
        };
        if word.starts_with("file") {
            files = number;
        } else if word.starts_with("insertion") || word.starts_with("deletion") {
            lines += number;
        }
    }
    (files, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(passed: usize, total: usize, finished: bool, lines: usize) -> Score {
        Score {
            checks_passed: passed,
            checks_total: total,
            agent_finished: finished,
            changed: lines > 0,
            files_changed: usize::from(lines > 0),
            lines_changed: lines,
            holds_secret: false,
        }
    }

    #[test]
    fn a_change_holding_a_secret_ranks_below_every_pushable_attempt() {
        let leaky = Score { holds_secret: true, ..score(2, 2, true, 1) };
        let scores = [leaky, score(0, 2, false, 0), score(1, 2, true, 9)];
        assert_eq!(rank(&scores), [2, 1, 0]);
    }

    #[test]
    fn all_checks_passing_beats_more_checks_beats_finishing_beats_a_smaller_diff() {
        let scores = [
            score(1, 2, true, 3),  // 0: a check broke
            score(2, 2, true, 40), // 1: passes, large diff
            score(2, 2, true, 4),  // 2: passes, small diff
            score(0, 2, false, 1), // 3: the agent failed
            score(2, 2, true, 4),  // 4: the same as 2: the lower number wins
            score(2, 2, true, 0),  // 5: passes but changed nothing
        ];
        assert_eq!(rank(&scores), [2, 4, 1, 5, 0, 3]);
    }

    #[test]
    fn an_attempt_whose_agent_failed_never_counts_as_all_passing() {
        let scores = [score(0, 0, false, 0), score(0, 0, true, 2)];
        assert_eq!(rank(&scores), [1, 0]);
    }

    #[test]
    fn diff_sizes_are_read_from_the_stat_summary() {
        assert_eq!(diff_size(" a | 2 +-\n b | 5 +++++\n 2 files changed, 6 insertions(+), 1 deletion(-)\n"), (2, 7));
        assert_eq!(diff_size(" a | 1 +\n 1 file changed, 1 insertion(+)\n"), (1, 1));
        assert_eq!(diff_size(" a | 3 ---\n 1 file changed, 3 deletions(-)\n"), (1, 3));
        assert_eq!(diff_size(""), (0, 0));
    }
}
