//! The fan-out of quorum writes: every copy gets every chunk, and one
//! failure fails them all.

use super::*;

fn chunks(n: usize) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    futures::stream::iter((0..n).map(|i| Ok(Bytes::from(vec![i as u8; 1024]))))
}

#[tokio::test]
async fn every_copy_gets_every_chunk_in_order() {
    let (mut txs, mut rxs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        txs.push(tx);
        rxs.push(ReceiverStream::new(rx));
    }
    let readers = rxs.into_iter().map(|rx| async move {
        let got: Vec<io::Result<Bytes>> = rx.collect().await;
        got.into_iter().map(|c| c.unwrap()).collect::<Vec<_>>()
    });
    let (pumped, got) = tokio::join!(pump(chunks(50), txs), futures::future::join_all(readers));
    assert!(matches!(pumped, Pumped::Done));
    for copy in got {
        assert_eq!(copy.len(), 50);
        assert!(copy.iter().enumerate().all(|(i, c)| c[0] == i as u8 && c.len() == 1024));
    }
}

#[tokio::test]
async fn a_lost_copy_fails_the_others_instead_of_ending_them_cleanly() {
    let (tx1, rx1) = mpsc::channel(CHANNEL_CHUNKS);
    let (tx2, rx2) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    drop(rx2); // this backend failed at once
    let reader = async move {
        let got: Vec<io::Result<Bytes>> = ReceiverStream::new(rx1).collect().await;
        got
    };
    let (pumped, got) = tokio::join!(pump(chunks(50), vec![tx1, tx2]), reader);
    assert!(matches!(pumped, Pumped::CopyLost));
    assert!(
        got.last().is_some_and(|c| c.is_err()),
        "the surviving copy sees an error"
    );
}

#[tokio::test]
async fn a_failed_body_fails_every_copy() {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let body = futures::stream::iter([
        Ok(Bytes::from_static(b"abc")),
        Err(io::Error::other("client went away")),
    ]);
    let reader = async move { ReceiverStream::new(rx).collect::<Vec<_>>().await };
    let (pumped, got) = tokio::join!(pump(body, vec![tx]), reader);
    assert!(matches!(pumped, Pumped::Body(_)));
    assert_eq!(got.len(), 2);
    assert!(got[1].is_err());
}
