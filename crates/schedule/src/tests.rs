use super::*;

#[test]
fn depth_is_four_per_thread_while_plenty_is_left_two_near_the_end_and_more_for_tiny_tasks() {
    assert_eq!(queue_depth(4, 0.0, None, true), 16, "no estimate yet");
    assert_eq!(queue_depth(4, 5e6, None, true), 16, "5 ms tasks");
    assert_eq!(queue_depth(4, 1.1e6, None, true), 16, "1.1 ms tasks");
    assert_eq!(queue_depth(4, 1.1e6, None, false), 8, "1.1 ms tasks near the end");
    assert_eq!(queue_depth(1, 1e3, None, true), 1024, "1 us tasks: capped");
    assert_eq!(
        queue_depth(2, 1e5, None, false),
        40,
        "100 us tasks: 2 ms of work in flight per thread"
    );
    assert_eq!(
        queue_depth(3, 1.0, Some(5), true),
        15,
        "a fixed depth overrides the rule"
    );
    // Plenty left: at least four tasks for each of the run's threads still to send.
    let mut q = TaskQueue::new(40, 10);
    assert!(q.ample());
    let mut out = Vec::new();
    q.take(1, &mut out);
    assert!(!q.ample(), "39 left for 10 threads");
    assert_eq!(batch_cap(1 << 20, 0), (1 << 19) / 48);
    assert_eq!(
        batch_cap(1024, 1 << 20),
        1,
        "one task always fits a message of its own"
    );
}

#[test]
fn a_feed_refills_at_half_depth_or_when_empty_and_caps_a_message() {
    let q = TaskQueue::new(100, 1);
    let mut feed = Feed::new(1, None, 3);
    assert_eq!(feed.want(&q), 3, "depth 4, capped at 3 a message");
    feed.sent(3);
    assert_eq!(feed.want(&q), 0, "1 free of 4: under half");
    feed.answered(5_000_000);
    assert_eq!(feed.want(&q), 2, "2 free of 4: half");
    feed.sent(2);
    feed.answered(1_000);
    assert!(feed.mean_task_ns() > 1_000.0 && feed.mean_task_ns() < 5_000_000.0);
    assert_eq!(feed.in_flight(), 3);
}

#[test]
fn results_group_up_to_the_size_or_the_wait() {
    let mut g = ResultGroup::new(0);
    for i in 1..RESULT_GROUP {
        assert!(!g.push(i as u64), "result {i}");
    }
    assert!(g.push(RESULT_GROUP as u64), "the 64th result goes");
    assert!(g.is_empty());
    assert!(
        g.push(RESULT_GROUP as u64 + RESULT_GROUP_WAIT_NS),
        "a long task's result goes at once"
    );
}

#[test]
fn cores_go_to_as_few_workers_as_hold_them_evenly() {
    assert_eq!(place(&[8, 8, 8, 8], 16), Some(vec![8, 8, 0, 0]));
    assert_eq!(place(&[8, 8, 8], 12), Some(vec![6, 6, 0]));
    assert_eq!(place(&[8, 8], 9), Some(vec![5, 4]));
    assert_eq!(place(&[4, 4, 4], 2), Some(vec![2, 0, 0]));
    assert_eq!(place(&[1, 8], 5), Some(vec![0, 5]), "the largest first");
    assert_eq!(place(&[1, 8], 9), Some(vec![1, 8]));
    assert_eq!(place(&[2, 2], 5), None);
    assert_eq!(place(&[2, 2], 0), None);
}

#[test]
fn lost_tasks_come_back_once_each_and_give_up_after_four_attempts() {
    let mut q = TaskQueue::new(5, 2);
    let mut out = Vec::new();
    assert_eq!(q.take(3, &mut out), 3);
    assert_eq!(out, vec![(0, 0), (1, 0), (2, 0)]);
    assert!(q.finish(1));
    assert!(!q.finish(1), "the first result wins");
    assert!(!q.finish(99), "out of range");
    q.requeue([(0, 0), (1, 0), (2, 0)]).unwrap();
    assert_eq!(q.retried(), 2, "a completed task is not re-sent");
    assert!(q.finish(2), "a late result may still win");
    out.clear();
    q.take(5, &mut out);
    assert_eq!(
        out,
        vec![(0, 1), (3, 0), (4, 0)],
        "retries first, done ones skipped"
    );
    assert!(q.drained());
    assert_eq!(q.requeue([(0, MAX_ATTEMPTS - 1)]), Err(Lost { id: 0 }));
}

#[test]
fn idle_workers_get_one_second_copy_of_the_longest_in_flight_tasks_once_nothing_is_left() {
    let mut q = TaskQueue::new(6, 2);
    let mut out = Vec::new();
    q.take(4, &mut out);
    assert_eq!(q.reissue(8, &mut out), 0, "no copies while tasks wait to be sent");
    out.clear();
    q.take(8, &mut out);
    assert!(q.drained());
    assert!(q.finish(0) && q.finish(2) && q.finish(5));
    out.clear();
    assert_eq!(q.reissue(2, &mut out), 2);
    assert_eq!(
        out,
        vec![(1, 1), (3, 1)],
        "the oldest not done, as another attempt"
    );
    out.clear();
    assert_eq!(q.reissue(8, &mut out), 1);
    assert_eq!(out, vec![(4, 1)]);
    out.clear();
    assert_eq!(q.reissue(8, &mut out), 0, "one copy each");
    assert_eq!(q.reissued(), 3);
    assert!(q.finish(1), "the first result wins, whichever copy it is");
    assert!(!q.finish(1));

    // Through a worker's feed: only a worker with nothing in flight takes copies.
    let mut q = TaskQueue::new(4, 3);
    let (mut busy, mut idle) = (Feed::new(1, Some(4), 16), Feed::new(2, Some(2), 16));
    assert_eq!(busy.refill(&mut q, &mut out), 4);
    assert_eq!(
        idle.refill(&mut q, &mut out),
        2,
        "a copy for each of the idle worker's threads"
    );
    assert_eq!(out, vec![(0, 1), (1, 1)], "{out:?}");
    assert_eq!(idle.refill(&mut q, &mut out), 0, "no more copies while those run");
    assert_eq!(busy.refill(&mut q, &mut out), 0, "a busy worker waits");
}
