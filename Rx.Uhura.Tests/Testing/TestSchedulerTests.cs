using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using Microsoft.Reactive.Testing;

namespace Rx.Uhura.Tests.Testing;

/// <summary>
/// Proves the in-repo Microsoft.Reactive.Testing replacement behaves like the package: virtual time,
/// hot/cold semantics, recorded subscriptions, and assertions that actually fail.
/// </summary>
public sealed class TestSchedulerTests : ReactiveTest
{
    private static readonly Exception Boom = new InvalidOperationException("boom");

    // ---- Start timing -------------------------------------------------------------------------

    [Fact]
    public void Start_creates_at_100_subscribes_at_200_and_disposes_at_1000()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable<int>(); // never emits, so only timing is observed
        long? createdAt = null;

        var res = scheduler.Start(() =>
        {
            createdAt = scheduler.Clock;
            return xs;
        });

        Assert.Equal(100, createdAt);
        xs.Subscriptions.AssertEqual(Subscribe(200, 1000));
        Assert.Empty(res.Messages);
        Assert.Equal(1000, scheduler.Clock);
    }

    [Fact]
    public void Start_with_only_a_disposal_time_keeps_the_default_create_and_subscribe_times()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(100, 1), OnNext(300, 2));
        long? createdAt = null;

        var res = scheduler.Start(() =>
        {
            createdAt = scheduler.Clock;
            return xs;
        }, 400);

        Assert.Equal(Created, createdAt);
        res.Messages.AssertEqual(OnNext(300, 1));
        xs.Subscriptions.AssertEqual(Subscribe(Subscribed, 400));
    }

    [Fact]
    public void Start_with_explicit_times_creates_subscribes_and_disposes_exactly_then()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(5, "a"), OnNext(50, "b"));
        long? createdAt = null;

        var res = scheduler.Start(() =>
        {
            createdAt = scheduler.Clock;
            return xs;
        }, created: 10, subscribed: 20, disposed: 60);

        Assert.Equal(10, createdAt);
        res.Messages.AssertEqual(OnNext(25, "a"));
        xs.Subscriptions.AssertEqual(Subscribe(20, 60));
    }

    // ---- Hot vs cold ---------------------------------------------------------------------------

    [Fact]
    public void Hot_observable_emits_at_absolute_ticks_and_a_late_subscriber_misses_earlier_messages()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(
            OnNext(150, 1),
            OnNext(210, 2),
            OnNext(300, 3),
            OnCompleted<int>(400));

        var res = scheduler.Start(() => xs);

        res.Messages.AssertEqual(
            OnNext(210, 2),
            OnNext(300, 3),
            OnCompleted<int>(400));
        // Subscribed directly (no operator in between), so nothing unsubscribes on completion.
        xs.Subscriptions.AssertEqual(Subscribe(200, 1000));
    }

    [Fact]
    public void Hot_observable_records_the_unsubscription_made_by_an_operator_on_completion()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(OnNext(250, 1), OnCompleted<int>(400));

        var res = scheduler.Start(() => xs.Select(x => x * 10));

        res.Messages.AssertEqual(OnNext(250, 10), OnCompleted<int>(400));
        xs.Subscriptions.AssertEqual(Subscribe(200, 400));
    }

    [Fact]
    public void Hot_observable_shares_one_timeline_between_subscribers()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(OnNext(110, 1), OnNext(210, 2), OnNext(310, 3));
        var early = scheduler.CreateObserver<int>();
        var late = scheduler.CreateObserver<int>();
        var subscriptions = new CompositeDisposable();

        scheduler.ScheduleAbsolute(100, () => subscriptions.Add(xs.Subscribe(early)));
        scheduler.ScheduleAbsolute(200, () => subscriptions.Add(xs.Subscribe(late)));
        scheduler.ScheduleAbsolute(400, subscriptions.Dispose);
        scheduler.Start();

        early.Messages.AssertEqual(OnNext(110, 1), OnNext(210, 2), OnNext(310, 3));
        late.Messages.AssertEqual(OnNext(210, 2), OnNext(310, 3));
        xs.Subscriptions.AssertEqual(Subscribe(100, 400), Subscribe(200, 400));
    }

    [Fact]
    public void Cold_observable_replays_its_messages_relative_to_each_subscription()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnNext(20, 2), OnCompleted<int>(30));
        var first = scheduler.CreateObserver<int>();
        var second = scheduler.CreateObserver<int>();
        IDisposable? secondSubscription = null;

        scheduler.ScheduleAbsolute(100, () => xs.Subscribe(first));
        scheduler.ScheduleAbsolute(300, () => secondSubscription = xs.Subscribe(second));
        scheduler.ScheduleAbsolute(315, () => secondSubscription!.Dispose());
        scheduler.Start();

        first.Messages.AssertEqual(OnNext(110, 1), OnNext(120, 2), OnCompleted<int>(130));
        second.Messages.AssertEqual(OnNext(310, 1)); // disposed at 315: the rest is cancelled
        xs.Subscriptions.AssertEqual(Subscribe(100), Subscribe(300, 315));
    }

    [Fact]
    public void Cold_observable_message_at_relative_zero_arrives_one_tick_after_subscription()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(0, 42));

        var res = scheduler.Start(() => xs);

        res.Messages.AssertEqual(OnNext(201, 42));
    }

    // ---- Operators on virtual time --------------------------------------------------------------

    [Fact]
    public void Retry_resubscribes_to_a_failing_cold_observable_at_the_exact_tick_of_each_error()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnNext(20, 2), OnError<int>(30, Boom));

        var res = scheduler.Start(() => xs.Retry(), 320);

        res.Messages.AssertEqual(
            OnNext(210, 1), OnNext(220, 2),
            OnNext(240, 1), OnNext(250, 2),
            OnNext(270, 1), OnNext(280, 2),
            OnNext(300, 1), OnNext(310, 2));
        xs.Subscriptions.AssertEqual(
            Subscribe(200, 230),
            Subscribe(230, 260),
            Subscribe(260, 290),
            Subscribe(290, 320));
    }

    [Fact]
    public void Retry_with_a_count_surfaces_the_last_error_at_its_tick()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnError<int>(30, Boom));

        var res = scheduler.Start(() => xs.Retry(3));

        res.Messages.AssertEqual(
            OnNext(210, 1),
            OnNext(240, 1),
            OnNext(270, 1),
            OnError<int>(290, Boom));
        xs.Subscriptions.AssertEqual(Subscribe(200, 230), Subscribe(230, 260), Subscribe(260, 290));
    }

    [Fact]
    public void Timeout_errors_exactly_one_due_time_after_the_last_element()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(OnNext(210, 1), OnNext(260, 2), OnNext(400, 3));

        var res = scheduler.Start(() => xs.Timeout(TimeSpan.FromTicks(100), scheduler));

        res.Messages.AssertEqual(
            OnNext(210, 1),
            OnNext(260, 2),
            OnError<int>(360, ex => ex is TimeoutException));
        xs.Subscriptions.AssertEqual(Subscribe(200, 360));
    }

    [Fact]
    public void Delay_shifts_every_notification_by_exactly_the_due_time()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(
            OnNext(250, 2),
            OnNext(350, 3),
            OnNext(450, 4),
            OnCompleted<int>(550));

        var res = scheduler.Start(() => xs.Delay(TimeSpan.FromTicks(100), scheduler));

        res.Messages.AssertEqual(
            OnNext(350, 2),
            OnNext(450, 3),
            OnNext(550, 4),
            OnCompleted<int>(650));
        xs.Subscriptions.AssertEqual(Subscribe(200, 550));
    }

    [Fact]
    public void Throttle_emits_the_last_value_of_a_burst_after_the_quiet_period_and_flushes_on_completion()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable(
            OnNext(210, 1),
            OnNext(230, 2),   // burst 1 ends here
            OnNext(300, 3),   // alone
            OnNext(480, 4),   // still pending when the source completes
            OnCompleted<int>(500));

        var res = scheduler.Start(() => xs.Throttle(TimeSpan.FromTicks(50), scheduler));

        res.Messages.AssertEqual(
            OnNext(280, 2),
            OnNext(350, 3),
            OnNext(500, 4),
            OnCompleted<int>(500));
        xs.Subscriptions.AssertEqual(Subscribe(200, 500));
    }

    // ---- Scheduler semantics -------------------------------------------------------------------

    [Fact]
    public void ScheduleAbsolute_in_the_past_or_at_now_runs_at_clock_plus_one()
    {
        var scheduler = new TestScheduler();
        var ranAt = new List<(string Name, long Tick)>();
        scheduler.AdvanceTo(500);

        scheduler.ScheduleAbsolute(300, () => ranAt.Add(("past", scheduler.Clock)));
        scheduler.ScheduleAbsolute(500, () => ranAt.Add(("now", scheduler.Clock)));
        scheduler.ScheduleAbsolute(600, () => ranAt.Add(("future", scheduler.Clock)));
        scheduler.Start();

        Assert.Equal([("past", 501L), ("now", 501L), ("future", 600L)], ranAt);
    }

    [Fact]
    public void Relative_and_absolute_time_are_plain_ticks()
    {
        var scheduler = new TestScheduler();
        long? ranAt = null;

        scheduler.Schedule(TimeSpan.FromTicks(42), () => ranAt = scheduler.Clock);
        scheduler.Start();

        Assert.Equal(42, ranAt);
        Assert.Equal(new DateTimeOffset(42, TimeSpan.Zero), scheduler.Now);
    }

    [Fact]
    public void Observer_created_by_the_scheduler_stamps_notifications_with_the_virtual_clock()
    {
        var scheduler = new TestScheduler();
        var observer = scheduler.CreateObserver<string>();

        scheduler.ScheduleAbsolute(10, () => observer.OnNext("x"));
        scheduler.ScheduleAbsolute(20, () => observer.OnError(Boom));
        scheduler.Start();

        observer.Messages.AssertEqual(OnNext(10, "x"), OnError<string>(20, Boom));
    }

    // ---- Assertions must be able to fail -------------------------------------------------------

    [Fact]
    public void AssertEqual_fails_with_expected_and_actual_listed_when_a_value_differs()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(100, 1), OnCompleted<int>(200));
        var res = scheduler.Start(() => xs);

        var ex = Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext(300, 2), OnCompleted<int>(400)));

        Assert.Contains("Expected", ex.Message);
        Assert.Contains("Actual", ex.Message);
        Assert.Contains("OnNext(2)@300", ex.Message);
        Assert.Contains("OnNext(1)@300", ex.Message);
    }

    [Fact]
    public void AssertEqual_fails_when_only_the_tick_differs()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(100, 1));
        var res = scheduler.Start(() => xs);

        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext(301, 1)));
        res.Messages.AssertEqual(OnNext(300, 1));
    }

    [Fact]
    public void AssertEqual_fails_when_a_notification_is_missing_or_extra()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(100, 1), OnCompleted<int>(200));
        var res = scheduler.Start(() => xs);

        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext(300, 1)));
        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext(300, 1), OnCompleted<int>(400), OnCompleted<int>(400)));
    }

    [Fact]
    public void Subscription_AssertEqual_fails_on_a_wrong_unsubscribe_tick_and_prints_infinite()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateHotObservable<int>();
        xs.Subscribe(scheduler.CreateObserver<int>());

        var ex = Assert.ThrowsAny<Exception>(() => xs.Subscriptions.AssertEqual(Subscribe(0, 450)));

        Assert.Contains("(0, Infinite)", ex.Message);
        Assert.Contains("(0, 450)", ex.Message);
        xs.Subscriptions.AssertEqual(Subscribe(0));
    }

    [Fact]
    public void Predicate_OnNext_matches_values_that_satisfy_it_and_fails_otherwise()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 7), OnNext(20, 8));
        var res = scheduler.Start(() => xs);

        res.Messages.AssertEqual(OnNext<int>(210, x => x % 2 == 1), OnNext<int>(220, x => x > 7));
        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext<int>(210, x => x > 100), OnNext(220, 8)));
        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext<int>(211, x => x == 7), OnNext(220, 8)));
    }

    [Fact]
    public void Predicate_OnNext_does_not_match_a_completion_or_an_error()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnCompleted<int>(10));
        var res = scheduler.Start(() => xs);

        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnNext<int>(210, _ => true)));
        res.Messages.AssertEqual(OnCompleted(210, 0));
    }

    [Fact]
    public void Predicate_OnError_matches_an_error_by_condition_instead_of_identity()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnError<string>(10, new InvalidOperationException("bad frame")));
        var res = scheduler.Start(() => xs);

        res.Messages.AssertEqual(OnError<string>(210, ex => ex.Message == "bad frame"));
        res.Messages.AssertEqual(OnError(210, ex => ex is InvalidOperationException, "witness"));
        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnError<string>(210, ex => ex is TimeoutException)));
        // A different exception instance with the same message is not equal without a predicate.
        Assert.ThrowsAny<Exception>(() => res.Messages.AssertEqual(OnError<string>(210, new InvalidOperationException("bad frame"))));
    }

    [Fact]
    public void ReactiveAssert_Throws_accepts_the_type_or_a_subtype_and_fails_otherwise()
    {
        ReactiveAssert.Throws<InvalidOperationException>(() => throw new InvalidOperationException());
        ReactiveAssert.Throws<ArgumentException>(() => throw new ArgumentNullException("x"));
        ReactiveAssert.Throws(Boom, () => throw Boom);

        Assert.ThrowsAny<Exception>(() => ReactiveAssert.Throws<InvalidOperationException>(() => { }));
        Assert.ThrowsAny<Exception>(() => ReactiveAssert.Throws<InvalidOperationException>(() => throw new ArgumentException()));
        Assert.ThrowsAny<Exception>(() => ReactiveAssert.Throws(Boom, () => throw new InvalidOperationException("other")));
    }

    [Fact]
    public void ReactiveAssert_AreElementsEqual_compares_plain_sequences_and_observables()
    {
        ReactiveAssert.AreElementsEqual(new[] { 1, 2, 3 }, new List<int> { 1, 2, 3 });
        ReactiveAssert.AreElementsEqual(Observable.Range(1, 3), new[] { 1, 2, 3 }.ToObservable());
        Observable.Return(5).AssertEqual(Observable.Return(5));

        var ex = Assert.ThrowsAny<Exception>(() => ReactiveAssert.AreElementsEqual(new[] { 1, 2 }, new[] { 1, 3 }, "custom"));
        Assert.StartsWith("custom", ex.Message);
        Assert.ThrowsAny<Exception>(() => Observable.Return(5).AssertEqual(Observable.Return(6)));
    }

    // ---- Value types ---------------------------------------------------------------------------

    [Fact]
    public void Recorded_and_Subscription_have_value_equality_and_readable_text()
    {
        Assert.Equal(new Recorded<int>(5, 1), new Recorded<int>(5, 1));
        Assert.True(new Recorded<int>(5, 1) != new Recorded<int>(6, 1));
        Assert.Equal("1@5", new Recorded<int>(5, 1).ToString());

        Assert.Equal(Subscribe(200, 300), new Subscription(200, 300));
        Assert.True(Subscribe(200) != Subscribe(200, 300));
        Assert.Equal(Subscription.Infinite, Subscribe(200).Unsubscribe);
        Assert.Equal(long.MaxValue, Subscription.Infinite);
        Assert.Equal("(200, 300)", Subscribe(200, 300).ToString());
        Assert.Equal("(200, Infinite)", Subscribe(200).ToString());
        Assert.Equal((100L, 200L, 1000L), (Created, Subscribed, Disposed));
    }
}
