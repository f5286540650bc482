//! The command reader against screens as bash, busybox sh and full-screen programs draw them.

use super::*;

fn model() -> TerminalModel {
    TerminalModel::new(80, 24, true, OutputCaps { head: 1 << 20, tail: 1 << 16 })
}

/// Plays (time, typed or printed) steps; `<` is input, `>` is output.
fn play(model: &mut TerminalModel, steps: &[(f64, &str, &str)]) -> Vec<Command> {
    let mut commands = Vec::new();
    for (at, dir, data) in steps {
        match *dir {
            "<" => model.input(*at, data.as_bytes()),
            _ => model.output(*at, data),
        }
        merge(&mut commands, model.take_commands());
    }
    model.finish(100.0);
    merge(&mut commands, model.take_commands());
    commands
}

fn merge(all: &mut Vec<Command>, changed: Vec<Command>) {
    for command in changed {
        match all.iter_mut().find(|c| c.seq == command.seq) {
            Some(old) => *old = command,
            None => all.push(command),
        }
    }
}

fn texts(commands: &[Command]) -> Vec<&str> {
    commands.iter().map(|c| c.text.as_str()).collect()
}

#[test]
fn a_typed_command_is_the_line_minus_the_prompt_at_the_enter_s_time() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.1, ">", "user@c:/$ "),
            (1.0, "<", "l"),
            (1.1, ">", "l"),
            (1.2, "<", "s"),
            (1.3, ">", "s"),
            (2.0, "<", "\r"),
            (2.1, ">", "\r\nfile\r\nuser@c:/$ "),
        ],
    );
    assert_eq!(texts(&got), ["ls"]);
    assert_eq!(got[0].at, 2.0);
    assert!(got[0].flags.is_empty());
}

#[test]
fn keys_sent_before_their_echo_are_read_when_the_echo_comes() {
    let mut m = model();
    let got = play(&mut m, &[(0.0, ">", "$ "), (1.0, "<", "ls -la\r"), (1.01, ">", "ls -la\r\ntotal 0\r\n$ ")]);
    assert_eq!(texts(&got), ["ls -la"]);
}

#[test]
fn edits_tab_completion_and_history_give_the_line_that_ran() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            // Backspace over a typo.
            (1.0, "<", "lx"),
            (1.0, ">", "lx"),
            (1.1, "<", "\x7f"),
            (1.1, ">", "\x08\x1b[K"),
            (1.2, "<", "s\r"),
            (1.2, ">", "s\r\n$ "),
            // Tab completion.
            (2.0, "<", "cat no\t"),
            (2.0, ">", "cat notes.txt "),
            (2.1, "<", "\r"),
            (2.1, ">", "\r\nhello\r\n$ "),
            // Up arrow recalls the line, Ctrl-W and typing edit it.
            (3.0, "<", "\x1b[A"),
            (3.0, ">", "cat notes.txt "),
            (3.1, "<", "\x17\x17"),
            (3.1, ">", "\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x1b[K"),
            (3.2, "<", "wc -l\r"),
            (3.2, ">", "wc -l\r\n"),
        ],
    );
    assert_eq!(texts(&got), ["ls", "cat notes.txt", "cat wc -l"]);
}

#[test]
fn input_typed_without_echo_is_never_recorded() {
    let mut m = model();
    let got = play(&mut m, &[(0.0, ">", "Password: "), (1.0, "<", "hunter2\r"), (1.5, ">", "\r\nok\r\n$ ")]);
    assert_eq!(texts(&got), [UNECHOED]);
    assert_eq!(got[0].flags, [CommandFlag::Unechoed]);
    m.finish(5.0);
    let output = m.take_output();
    assert!(output.iter().all(|l| !l.text.contains("hunter2")), "{output:?}");
}

#[test]
fn a_submitted_line_without_a_line_feed_is_read_after_a_wait() {
    let mut m = model();
    m.output(0.0, "[sudo] password for dev: ");
    m.input(1.0, b"s3cret\r");
    m.tick(1.5);
    assert!(m.take_commands().is_empty());
    m.tick(3.5);
    assert_eq!(texts(&m.take_commands()), [UNECHOED]);
}

#[test]
fn continuation_prompts_join_the_command_they_continue() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "for i in 1 2; do\r"),
            (1.0, ">", "for i in 1 2; do\r\n> "),
            (2.0, "<", "echo $i; done\r"),
            (2.0, ">", "echo $i; done\r\n1\r\n2\r\n$ "),
            (3.0, "<", "cat <<EOF\r"),
            (3.0, ">", "cat <<EOF\r\n> "),
            (3.5, "<", "hi\r"),
            (3.5, ">", "hi\r\n> "),
            (4.0, "<", "EOF\r"),
            (4.0, ">", "EOF\r\nhi\r\n$ "),
        ],
    );
    assert_eq!(texts(&got), ["for i in 1 2; do\necho $i; done", "cat <<EOF\nhi\nEOF"]);
    assert_eq!(got[0].flags, [CommandFlag::Continued]);
    assert_eq!(got[0].at, 1.0);
}

#[test]
fn several_lines_in_one_chunk_are_a_paste() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "echo one\recho two\recho three\r"),
            (1.1, ">", "echo one\r\none\r\n$ echo two\r\ntwo\r\n$ echo three\r\nthree\r\n$ "),
        ],
    );
    assert_eq!(texts(&got), ["echo one", "echo two", "echo three"]);
    assert!(got.iter().all(|c| c.flags == [CommandFlag::Paste]));
}

#[test]
fn a_bracketed_paste_is_one_command_when_it_runs() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "\x1b[200~echo a\recho b\x1b[201~"),
            (1.0, ">", "echo a\r\necho b"),
            (2.0, "<", "\r"),
            (2.0, ">", "\r\na\r\nb\r\n$ "),
        ],
    );
    assert_eq!(texts(&got), ["echo a\necho b"]);
    assert_eq!(got[0].flags, [CommandFlag::Paste]);
}

#[test]
fn a_full_screen_program_is_one_entry_and_its_keys_are_not_commands() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "vim notes\r"),
            (1.0, ">", "vim notes\r\n\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n\"notes\" [New]"),
            (2.0, "<", "ihello\x1b"),
            (2.5, "<", ":wq\r"),
            (2.6, ">", "\x1b[?1049l"),
            (3.0, "<", "pwd\r"),
            (3.0, ">", "pwd\r\n/\r\n$ "),
        ],
    );
    assert_eq!(texts(&got), ["vim notes", "pwd"]);
    assert_eq!(got[0].flags, [CommandFlag::Program]);
}

#[test]
fn ctrl_c_abandons_the_line() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "rm -rf x"),
            (1.0, ">", "rm -rf x"),
            (2.0, "<", "\x03"),
            (2.0, ">", "^C\r\n$ "),
            (3.0, "<", "\r"),
            (3.0, ">", "\r\n$ "),
        ],
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn without_a_terminal_commands_are_stdin_lines() {
    let mut m = TerminalModel::new(80, 24, false, OutputCaps { head: 1 << 20, tail: 1 << 16 });
    m.input(0.5, b"echo a\nech");
    m.input(0.7, b"o b\n");
    assert_eq!(texts(&m.take_commands()), ["echo a", "echo b"]);
}

#[test]
fn output_lines_are_indexed_with_their_time_and_the_command_line_is_not() {
    let mut m = model();
    m.output(0.0, "$ ");
    m.input(1.0, b"cat f\r");
    m.output(1.1, "cat f\r\nalpha\r\nbeta\r\n$ ");
    m.tick(2.5);
    let lines = m.take_output();
    let texts: Vec<_> = lines.iter().map(|l| (l.at, l.text.as_str())).collect();
    assert_eq!(texts, [(1.1, "alpha"), (1.1, "beta")]);
}

#[test]
fn any_bytes_in_any_order_never_panic() {
    let mut m = TerminalModel::new(3, 2, true, OutputCaps { head: 64, tail: 64 });
    for chunk in ["\x1b[?1049h", "\r\r\r", "\x1b[200~\r", "\u{fffd}\x1b[", "\n\n\n\n", "\x1b[?1049l", "\x1b]0;t\x07"] {
        m.input(1.0, chunk.as_bytes());
        m.output(1.0, chunk);
        m.resize(1, 1);
        m.tick(9.0);
    }
    m.finish(10.0);
    let _ = (m.take_commands(), m.finish_output(10.0), m.dump());
}

#[test]
fn keys_typed_ahead_of_the_prompt_do_not_end_up_in_the_command() {
    let mut m = model();
    let got = play(
        &mut m,
        &[
            (0.0, ">", "/ # "),
            (1.0, "<", "echo a\r"),
            (1.0, ">", "echo a\r\na\r\n"),
            // The tty echoed the first key before the shell printed its prompt again.
            (1.1, "<", "e"),
            (1.1, ">", "e/ # e"),
            (1.2, "<", "cho b\r"),
            (1.2, ">", "cho b\r\nb\r\n/ # "),
        ],
    );
    assert_eq!(texts(&got), ["echo a", "echo b"]);
}

#[test]
fn bulk_output_gives_the_same_screen_and_every_line_once() {
    let chunk: String = (0..500).map(|i| format!("\x1b[01;3{}mfile-{i}\x1b[0m\tsize {}\r\n", i % 8, i * 7)).collect();
    let tail = "\x1b[1mstill bold at the prompt $ ";
    let mut fast = model();
    fast.output(0.0, "$ ");
    fast.input(1.0, b"ls\r");
    fast.output(1.1, "ls\r\n");
    fast.output(1.2, &chunk);
    fast.output(1.3, tail);
    let mut whole = avt::Terminal::new(80, 24).unwrap();
    whole.feed(format!("$ ls\r\n{chunk}{tail}"));
    let expected: Vec<String> = whole.screen().visible_lines().map(|l| l.text().trim_end().to_owned()).collect();
    assert_eq!(fast.screen_text(), expected);
    // Every listed line is indexed once, in order, as the screen showed it.
    fast.finish(2.0);
    let lines: Vec<String> =
        fast.take_output().into_iter().map(|l| l.text).filter(|t| t.starts_with("file-")).collect();
    let want: Vec<String> =
        (0..500).map(|i| format!("file-{i}{}size {}", " ".repeat(8 - format!("file-{i}").len() % 8), i * 7)).collect();
    assert_eq!(lines.len(), 500);
    assert_eq!(lines, want);
    // The pen after the bulk is the one the text left: the dump of both screens matches.
    let mut replayed = avt::Terminal::new(80, 24).unwrap();
    replayed.feed(fast.dump());
    assert_eq!(replayed.dump(), whole.dump());
}

#[test]
fn bulk_output_in_many_chunks_is_the_same_as_in_one() {
    let lines: Vec<String> = (0..2000).map(|i| format!("\x1b[3{}mrow {i}\x1b[0m\r\n", i % 8)).collect();
    let mut one = model();
    one.output(0.0, &lines.concat());
    let mut many = model();
    for (i, piece) in lines.chunks(37).enumerate() {
        many.output(i as f64, &piece.concat());
    }
    many.output(99.0, "$ ");
    one.output(99.0, "$ ");
    assert_eq!(many.screen_text(), one.screen_text());
    assert_eq!(many.dump(), one.dump());
    many.finish(100.0);
    one.finish(100.0);
    let text = |m: &mut TerminalModel| m.take_output().into_iter().map(|l| l.text).collect::<Vec<_>>();
    let (a, b) = (text(&mut many), text(&mut one));
    assert_eq!(a.len(), 2001, "every row and the prompt");
    assert!(a == b, "the same lines in the same order");
}

/// Plays steps without reading commands (the line before an Enter, as a rule's gate asks).
fn feed(model: &mut TerminalModel, steps: &[(f64, &str, &str)]) {
    for (at, dir, data) in steps {
        match *dir {
            "<" => model.input(*at, data.as_bytes()),
            _ => model.output(*at, data),
        }
    }
}

#[test]
fn the_pending_line_is_what_the_screen_shows_after_edits_and_completion() {
    let mut m = model();
    feed(
        &mut m,
        &[
            (0.0, ">", "root@c:/# "),
            (1.0, "<", "rm -rf /dx"),
            (1.1, ">", "rm -rf /dx"),
            (1.2, "<", "\x7fa\t"),
            (1.3, ">", "\x08 \x08ata/"),
        ],
    );
    assert_eq!(m.pending_line(), Some(PendingLine { text: "rm -rf /data/".into(), unechoed: false }));
}

#[test]
fn a_pending_continuation_line_carries_the_lines_before_it() {
    let mut m = model();
    feed(
        &mut m,
        &[
            (0.0, ">", "$ "),
            (1.0, "<", "rm -rf \\"),
            (1.1, ">", "rm -rf \\"),
            (1.2, "<", "\r"),
            (1.3, ">", "\r\n> "),
            (2.0, "<", "/data"),
            (2.1, ">", "/data"),
        ],
    );
    assert_eq!(m.pending_line().map(|l| l.text), Some("rm -rf \\\n/data".into()));
}

#[test]
fn unechoed_keys_are_the_pending_line_and_a_program_has_none() {
    let mut m = model();
    feed(&mut m, &[(0.0, ">", "$ "), (1.0, "<", "rm -rf /data")]);
    assert_eq!(m.pending_line(), Some(PendingLine { text: "rm -rf /data".into(), unechoed: true }));
    let mut m = model();
    feed(&mut m, &[(0.0, ">", "$ "), (1.0, "<", "vi\r"), (1.1, ">", "vi\r\n\x1b[?1049h~\r\n~")]);
    assert_eq!(m.pending_line(), None);
    let mut m = TerminalModel::new(80, 24, false, OutputCaps { head: 1 << 20, tail: 1 << 16 });
    assert_eq!(m.pending_line(), None);
}

#[test]
fn after_ctrl_c_or_a_blocked_command_a_line_at_a_continuation_prompt_continues_nothing() {
    let mut m = model();
    feed(
        &mut m,
        &[(0.0, ">", "$ "), (1.0, "<", "rm -rf \\"), (1.1, ">", "rm -rf \\"), (1.2, "<", "\r"), (1.3, ">", "\r\n> ")],
    );
    m.take_commands();
    // Keys typed before the shell has answered Ctrl-C: the screen still shows `> `.
    feed(&mut m, &[(2.0, "<", "\x03"), (2.1, "<", "ls"), (2.2, ">", "^Cls")]);
    assert_eq!(m.pending_line().map(|l| l.text), Some("^Cls".into()));
    let mut m = model();
    feed(
        &mut m,
        &[(0.0, ">", "$ "), (1.0, "<", "rm -rf \\"), (1.1, ">", "rm -rf \\"), (1.2, "<", "\r"), (1.3, ">", "\r\n> ")],
    );
    m.blocked(1.5, "rm -rf \\\n/data".into());
    feed(&mut m, &[(2.1, "<", "ls"), (2.2, ">", "ls")]);
    assert_eq!(m.pending_line().map(|l| l.text), Some("ls".into()));
}

/// Output lines and screen after `text` printed in `chunk`-byte pieces, `gap` seconds apart.
fn printed(text: &str, chunk: usize, gap: f64) -> (Vec<OutputLine>, Vec<String>) {
    let mut m = model();
    let mut lines = Vec::new();
    let mut at = 1.0;
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + chunk).min(bytes.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        m.output(at, &text[start..end]);
        lines.extend(m.take_output());
        if gap >= 1.0 {
            m.tick(at + 0.5);
            lines.extend(m.take_output());
        }
        start = end;
        at += gap;
    }
    let screen = m.screen_text();
    lines.extend(m.finish_output(at));
    (lines, screen)
}

#[test]
fn plain_output_in_small_pieces_is_read_as_in_one_piece() {
    let text: String = (0..3000).map(|i| format!("\x1b[3{}mline {i} of the build\x1b[0m\r\n", i % 7)).collect();
    let (whole, whole_screen) = printed(&text, text.len(), 0.0);
    for chunk in [100, 1024, 4096] {
        let (pieces, screen) = printed(&text, chunk, 0.001);
        let texts = |lines: &[OutputLine]| lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&pieces), texts(&whole), "{chunk}-byte pieces");
        assert_eq!(screen, whole_screen, "{chunk}-byte pieces");
    }
}

#[test]
fn output_that_trickles_is_not_held_back_but_a_stream_is_gathered() {
    // A line a second (ping): nothing is held back, so each line is where it was printed.
    let mut m = model();
    for i in 0..40 {
        m.output(1.0 + f64::from(i), &format!("64 bytes from 10.0.0.1: icmp_seq={i}\r\n"));
        assert!(m.lazy.is_empty(), "held back after line {i}");
    }
    // Output a millisecond apart is gathered (and read whole at the next look).
    let mut m = model();
    for i in 0..10 {
        m.output(1.0 + f64::from(i) * 0.001, &format!("line {i}\r\n"));
    }
    assert!(m.lazy.contains("line 9"), "{:?}", m.lazy);
    assert_eq!(m.screen_text()[9], "line 9");
    assert!(m.lazy.is_empty());
}

#[test]
fn an_idle_session_s_terminal_sleeps_and_wakes_where_it_was() {
    let mut m = model();
    let mut awake = model();
    let steps = [
        (0.1, ">", "\x1b[1;32muser@c\x1b[0m:/$ "),
        (1.0, "<", "echo one\r"),
        (1.1, ">", "echo one\r\none\r\n\x1b[1;32muser@c\x1b[0m:/$ "),
    ];
    for model in [&mut m, &mut awake] {
        play_steps(model, &steps);
    }
    // Ticks within SLEEP_AFTER of the last event keep it awake; a later one puts it to sleep.
    m.tick(1.1 + SLEEP_AFTER / 2.0);
    assert!(!m.is_asleep());
    m.tick(1.2 + SLEEP_AFTER);
    assert!(m.is_asleep());
    assert_eq!(m.dump(), awake.dump(), "a watcher gets the same screen from the sleeping terminal");
    assert!(m.is_asleep(), "the dump did not wake it");
    // The next command is read as on a terminal that never slept.
    let more = [(20.0, "<", "ls\r"), (20.1, ">", "ls\r\nbin etc\r\n\x1b[1;32muser@c\x1b[0m:/$ ")];
    play_steps(&mut m, &more);
    play_steps(&mut awake, &more);
    assert!(!m.is_asleep());
    assert_eq!(m.dump(), awake.dump());
    let (slept, stayed) = (m.take_commands(), awake.take_commands());
    assert_eq!(texts(&slept), texts(&stayed));
    assert_eq!(texts(&slept), ["echo one", "ls"]);
}

#[test]
fn a_terminal_inside_an_unfinished_escape_sequence_stays_awake() {
    let mut m = model();
    play_steps(&mut m, &[(0.1, ">", "$ "), (0.2, ">", "\x1b]0;a title not ended yet")]);
    m.tick(0.2 + 2.0 * SLEEP_AFTER);
    assert!(!m.is_asleep());
    play_steps(&mut m, &[(30.0, ">", "\x07\x1b[m$ ")]);
    m.tick(30.0 + SLEEP_AFTER);
    assert!(m.is_asleep());
}

/// Plays steps without finishing the session.
fn play_steps(model: &mut TerminalModel, steps: &[(f64, &str, &str)]) {
    for (at, dir, data) in steps {
        match *dir {
            "<" => model.input(*at, data.as_bytes()),
            _ => model.output(*at, data),
        }
    }
}
