//! The permessage-deflate frame reader of a server WebSocket
//! (`transport::deflate::Inflating`): whatever a client sends, read in any
//! pieces.
//!
//! Input: two bytes of limit selector and cut count, the cut offsets (two
//! bytes each), then the client's bytes. Properties: no panic (every length
//! sum is checked: issue 20, case 2); the output does not depend on how the
//! bytes were cut; it is never larger than the input plus what inflating
//! within the limit can add.
#![no_main]

use feedgate::fuzz_api::inflate_client_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, cuts], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_message = [125usize, 1 << 10, 64 << 10][usize::from(limit % 3)];
    let n = usize::from(cuts % 8);
    let Some((cut_bytes, input)) = rest.split_at_checked(2 * n) else {
        return;
    };
    let cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    let whole = inflate_client_bytes(input, &[], max_message);
    let pieces = inflate_client_bytes(input, &cuts, max_message);
    assert_eq!(
        whole, pieces,
        "the output depends on where the input was cut"
    );
    // Each frame's header at most grows by 14 bytes, and each inflated
    // message is at most the limit.
    let bound = input.len() * 16 + max_message * (input.len() / 2 + 1) + 14;
    assert!(
        whole.len() <= bound,
        "{} bytes out of {}",
        whole.len(),
        input.len()
    );
});
