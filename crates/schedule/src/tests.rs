use super::*;

#[test]
fn credit_depth_is_four_per_thread_while_plenty_is_left_two_near_the_end_and_more_for_tiny_tasks() {
    let credit = |threads, mean, fixed, left| Policy::Credit.depth(threads, mean, fixed, left);
    assert_eq!(credit(4, 0.0, None, 100), 16, "no estimate yet");
    assert_eq!(credit(4, 5e6, None, 100), 16, "5 ms tasks");
    assert_eq!(credit(4, 1.1e6, None, 4), 16, "1.1 ms tasks");
    assert_eq!(credit(4, 1.1e6, None, 3), 8, "1.1 ms tasks near the end");
    assert_eq!(credit(1, 1e3, None, 100), 1024, "1 us tasks: capped");
    assert_eq!(
        credit(2, 1e5, None, 0),
        40,
        "100 us tasks: 2 ms of work in flight per thread"
    );
    for policy in Policy::ALL {
        assert_eq!(
            policy.depth(3, 1.0, Some(5), 100),
            15,
            "a fixed depth overrides {policy:?}"
        );
    }
    // Tasks left to send per thread of the run.
    let mut q = TaskQueue::new(40, 10);
    assert_eq!(q.left_per_thread(), 4);
    let mut out = Vec::new();
    q.take(1, &mut out);
    assert_eq!(q.left_per_thread(), 3, "39 left for 10 threads");
    assert_eq!(batch_cap(1 << 20, 0), (1 << 19) / 48);
    assert_eq!(
        batch_cap(1024, 1 << 20),
        1,
        "one task always fits a message of its own"
    );
}

#[test]
fn guided_depth_queues_32_ms_per_thread_and_tapers_to_half_a_threads_share_of_what_is_left() {
    let guided = |threads, mean, left| Policy::Guided.depth(threads, mean, None, left);
    assert_eq!(guided(2, 0.0, 10_000), 8, "no estimate yet: 4 per thread");
    assert_eq!(guided(2, 5e5, 10_000), 128, "500 us tasks: 64 per thread");
    assert_eq!(guided(2, 1e8, 10_000), 8, "100 ms tasks: 4 per thread");
    assert_eq!(guided(1, 1e3, 1 << 30), 1024, "1 us tasks: capped");
    assert_eq!(guided(2, 5e5, 40), 40, "40 left per thread: 20 each");
    assert_eq!(guided(2, 5e5, 1), 4, "at the end: 2 per thread");
    assert_eq!(
        Policy::Pull.depth(3, 5e5, None, 10_000),
        6,
        "pull: one running, one ready"
    );
}

#[test]
fn a_feed_refills_at_half_depth_or_when_empty_and_caps_a_message() {
    let q = TaskQueue::new(100, 1);
    let mut feed = Feed::new(Policy::Credit, 1, None, 3);
    assert_eq!(feed.want(&q), 3, "depth 4, capped at 3 a message");
    feed.sent(3);
    assert_eq!(feed.want(&q), 0, "1 free of 4: under half");
    feed.answered(5_000_000);
    assert_eq!(feed.want(&q), 2, "2 free of 4: half");
    feed.sent(2);
    feed.answered(1_000);
    assert!(feed.mean_task_ns() > 1_000.0 && feed.mean_task_ns() < 5_000_000.0);
    assert_eq!(feed.in_flight(), 3);
    // Pull: a refill as soon as one thread's slot is free.
    let mut pull = Feed::new(Policy::Pull, 2, None, 64);
    assert_eq!(pull.want(&q), 4);
    pull.sent(4);
    assert_eq!(pull.want(&q), 0);
    pull.answered(5_000_000);
    assert_eq!(pull.want(&q), 1, "one result, one task");
}

#[test]
fn results_go_first_at_once_then_in_groups_up_to_the_size_or_the_policys_wait() {
    let wait = Policy::Guided.result_wait_ns();
    let mut g = ResultGroup::new(0, wait);
    assert!(g.push(1), "a thread's first result goes at once");
    for i in 1..RESULT_GROUP {
        assert!(!g.push(1 + i as u64), "result {i}");
    }
    assert!(g.push(1 + RESULT_GROUP as u64), "the 64th result goes");
    assert!(g.is_empty());
    assert!(
        g.push(2 + RESULT_GROUP as u64 + wait),
        "a long task's result goes at once"
    );
    let mut pull = ResultGroup::new(0, Policy::Pull.result_wait_ns());
    assert!(pull.push(1) && pull.push(2), "pull: every result at once");
    assert!(Policy::Credit.result_wait_ns() < wait);
}

#[test]
fn policies_are_named_in_configs() {
    for policy in Policy::ALL {
        assert_eq!(Policy::from_name(policy.name()), Some(policy));
    }
    assert_eq!(Policy::from_name("push"), None);
    assert_eq!(Policy::default(), Policy::ALL[0]);
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
    assert_eq!(
        q.reissue(8, false, &mut out),
        0,
        "no copies while tasks wait to be sent"
    );
    out.clear();
    q.take(8, &mut out);
    assert!(q.drained());
    assert!(q.finish(0) && q.finish(2) && q.finish(5));
    out.clear();
    assert_eq!(q.reissue(2, false, &mut out), 2);
    assert_eq!(
        out,
        vec![(1, 1), (3, 1)],
        "the oldest not done, as another attempt"
    );
    out.clear();
    assert_eq!(q.reissue(8, false, &mut out), 1);
    assert_eq!(out, vec![(4, 1)]);
    out.clear();
    assert_eq!(q.reissue(8, false, &mut out), 0, "one copy each");
    assert_eq!(q.reissued(), 3);
    assert!(q.finish(1), "the first result wins, whichever copy it is");
    assert!(!q.finish(1));

    // The newest first: the tasks their worker reaches last.
    let mut q = TaskQueue::new(6, 2);
    q.take(6, &mut out);
    assert!(q.finish(5));
    out.clear();
    assert_eq!(q.reissue(2, true, &mut out), 2);
    assert_eq!(out, vec![(4, 1), (3, 1)]);

    // Through a worker's feed: only a worker with nothing in flight takes copies.
    let mut q = TaskQueue::new(4, 3);
    let (mut busy, mut idle) = (
        Feed::new(Policy::Credit, 1, Some(4), 16),
        Feed::new(Policy::Credit, 2, Some(2), 16),
    );
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
