//! The SSE parser, from arbitrary bytes: the events do not depend on how the stream is cut
//! into reads, and what the proxy writes back reads as the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_mcp::fuzzing::SseParser;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let whole = SseParser::new(MAX).feed(stream);

    // Cut into reads of 1..=16 bytes: the same events, or the same failure.
    let step = usize::from(step % 16) + 1;
    let mut p = SseParser::new(MAX);
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in stream.chunks(step) {
        match p.feed(chunk) {
            Ok(e) => events.extend(e),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    match &whole {
        Ok(e) => {
            assert!(!failed, "a split stream failed where the whole did not");
            assert_eq!(e, &events);
        }
        Err(_) => assert!(failed, "a split stream passed where the whole failed"),
    }

    // Written back, the events read the same.
    if let Ok(events) = whole {
        let mut out = Vec::new();
        for e in &events {
            e.write(&mut out);
        }
        let again = SseParser::new(usize::MAX).feed(&out).unwrap();
        assert_eq!(again, events);
    }
});
