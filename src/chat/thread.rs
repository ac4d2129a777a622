//! A Slack thread as context for the agent: who said what before the request, oldest first,
//! errand's own messages marked as errand's, so a follow-up in a thread carries the conversation.

use std::fmt::Write as _;

use super::api::{BotIdentity, ThreadMessage};

/// The most messages of a thread the agent is given (the most recent ones).
const MAX_MESSAGES: usize = 50;

/// The most characters of one message the agent is given.
const MAX_MESSAGE_CHARS: usize = 4_000;

/// The thread's messages up to and including the one that asked (`asking_ts`), as Markdown for
/// the task file; empty when the request is the thread's only message.
pub fn thread_context(messages: &[ThreadMessage], asking_ts: Option<&str>, me: Option<&BotIdentity>) -> String {
    let upto: Vec<&ThreadMessage> = messages
        .iter()
        .filter(|m| asking_ts.is_none_or(|asked| ts_le(&m.ts, asked)))
        .filter(|m| !m.text.trim().is_empty())
        .collect();
    if upto.len() <= 1 {
        return String::new();
    }
    let skipped = upto.len().saturating_sub(MAX_MESSAGES);
    let mut out = String::from("## The Slack thread so far\n\nOldest first; the last message is the request.\n\n");
    if skipped > 0 {
        let _ = writeln!(out, "_({skipped} earlier messages left out)_\n");
    }
    for message in &upto[skipped..] {
        let own = me.is_some_and(|me| {
            message.user.as_deref() == Some(me.user_id.as_str())
                || (message.bot_id.is_some() && message.bot_id == me.bot_id)
        });
        let who = match (&message.user, &message.bot_id) {
            _ if own => "errand (you, earlier)".to_owned(),
            (Some(user), None) => format!("<@{user}>"),
            (_, Some(bot)) => format!("a bot ({bot})"),
            (None, None) => "someone".to_owned(),
        };
        let text: String = message.text.trim().chars().take(MAX_MESSAGE_CHARS).collect();
        let _ = writeln!(out, "**{who}** wrote:\n");
        for line in text.lines() {
            let _ = writeln!(out, "> {line}");
        }
        out.push('\n');
    }
    out
}

/// Whether Slack timestamp `a` is not later than `b` (`seconds.micros`, compared as numbers).
fn ts_le(a: &str, b: &str) -> bool {
    let parse = |ts: &str| {
        let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
        (secs.parse::<u64>().unwrap_or(u64::MAX), micros.parse::<u64>().unwrap_or(0))
    };
    parse(a) <= parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(user: &str, bot: Option<&str>, text: &str, ts: &str) -> ThreadMessage {
        ThreadMessage { user: Some(user.into()), bot_id: bot.map(Into::into), text: text.into(), ts: ts.into() }
    }

    #[test]
    fn the_thread_up_to_the_request_says_who_said_what() {
        let me = BotIdentity { user_id: "UBOT".into(), bot_id: Some("BBOT".into()), team_id: "T1".into() };
        let thread = [
            message("U1", None, "the login test is flaky", "1700000000.000100"),
            message("UBOT", Some("BBOT"), "✅ Done: opened PR #3", "1700000000.000200"),
            message("U2", None, "<@UBOT> also handle the empty password", "1700000000.000300"),
            message("U1", None, "later message", "1700000000.000400"),
        ];
        let context = thread_context(&thread, Some("1700000000.000300"), Some(&me));
        assert!(context.contains("**<@U1>** wrote:\n\n> the login test is flaky"), "{context}");
        assert!(context.contains("**errand (you, earlier)** wrote:"), "{context}");
        assert!(context.contains("> <@UBOT> also handle the empty password"), "{context}");
        assert!(!context.contains("later message"), "{context}");
    }

    #[test]
    fn a_request_alone_in_its_thread_adds_nothing() {
        let thread = [message("U1", None, "<@UBOT> fix it", "1.1")];
        assert_eq!(thread_context(&thread, Some("1.1"), None), "");
    }

    #[test]
    fn timestamps_compare_as_numbers() {
        assert!(ts_le("9.5", "10.1"));
        assert!(ts_le("10.000100", "10.000100"));
        assert!(!ts_le("10.000200", "10.000100"));
    }
}
