using System.Reactive.Linq;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Time;

/// <summary>The reconnect schedule, on the virtual clock: Polly waits on a TimeProvider that follows the test scheduler.</summary>
public class RetryWithPolicyTests : ReactiveTest
{
    private static readonly long Ms = TimeSpan.TicksPerMillisecond;
    private const long S = Subscribed;
    private static readonly Exception Boom = new InvalidOperationException("boom");

    private static (TestScheduler Scheduler, List<(int Attempt, TimeSpan Delay)> Retries, Func<Polly.ResiliencePipeline> Pipeline) Setup(ReconnectOptions options)
    {
        var scheduler = new TestScheduler();
        var retries = new List<(int, TimeSpan)>();
        var pipeline = ReconnectPipeline.Build(options, new SchedulerTimeProvider(scheduler), (attempt, delay, _) => retries.Add((attempt, delay)));
        return (scheduler, retries, () => pipeline);
    }

    private static readonly ReconnectOptions NoJitter = new() { FirstDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(1000), UseJitter = false };

    [Fact]
    public void Failed_attempts_are_retried_after_delays_that_double_up_to_the_cap()
    {
        var (scheduler, retries, pipeline) = Setup(NoJitter);
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 5000 * Ms);

        // Each attempt fails 10 ms after it starts; then 100, 200, 400, 800, 1000, 1000 ... ms.
        xs.Subscriptions.Take(7).AssertEqual(
            Subscribe(S, S + 10 * Ms),
            Subscribe(S + 110 * Ms, S + 120 * Ms),
            Subscribe(S + 320 * Ms, S + 330 * Ms),
            Subscribe(S + 730 * Ms, S + 740 * Ms),
            Subscribe(S + 1540 * Ms, S + 1550 * Ms),
            Subscribe(S + 2550 * Ms, S + 2560 * Ms),
            Subscribe(S + 3560 * Ms, S + 3570 * Ms));
        Assert.Equal([1, 2, 3, 4, 5, 6], retries.Take(6).Select(r => r.Attempt));
        Assert.Equal(new[] { 100, 200, 400, 800, 1000, 1000 }.Select(ms => TimeSpan.FromMilliseconds(ms)), retries.Take(6).Select(r => r.Delay));
    }

    [Fact]
    public void The_attempt_count_restarts_after_a_successful_connect_and_the_drop_waits_the_first_delay()
    {
        var (scheduler, retries, pipeline) = Setup(NoJitter);
        var attempt = 0;
        var xs = Observable.Defer(() => ++attempt switch
        {
            // Two failures, a success that drops after 1 s, then failures again.
            3 => Observable.Return(attempt).Concat(Observable.Throw<int>(Boom).DelaySubscription(TimeSpan.FromSeconds(1), scheduler)),
            _ => Observable.Throw<int>(Boom),
        });
        var res = scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 2000 * Ms);

        res.Messages.AssertEqual(OnNext(S + 300 * Ms, 3)); // tries at 0, 100, 300 (connected)
        // The drop at 1300 waits the first delay again (100), then 200, 400: the count restarted.
        Assert.Equal(new[] { 100, 200, 100, 200, 400 }.Select(ms => TimeSpan.FromMilliseconds(ms)), retries.Take(5).Select(r => r.Delay));
        Assert.Equal([1, 2, 1, 2, 3], retries.Take(5).Select(r => r.Attempt));
    }

    [Fact]
    public void Jittered_delays_stay_within_zero_and_the_cap_and_differ_from_plain_doubling()
    {
        List<TimeSpan> Run(int seed)
        {
            var random = new Random(seed);
            var (scheduler, retries, pipeline) = Setup(NoJitter with { UseJitter = true, MaxDelay = TimeSpan.FromMilliseconds(800), Randomizer = random.NextDouble });
            var xs = scheduler.CreateColdObservable(OnError<int>(Ms, Boom));
            scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 60_000 * Ms);
            return retries.Select(r => r.Delay).ToList();
        }

        var a = Run(1);
        var b = Run(2);
        Assert.True(a.Count > 50, $"only {a.Count} retries");
        Assert.All(a.Concat(b), d => Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromMilliseconds(800)));
        Assert.NotEqual(a.Take(5), b.Take(5));
        var doubling = new[] { 100, 200, 400, 800, 800 }.Select(ms => TimeSpan.FromMilliseconds(ms));
        Assert.NotEqual(doubling, a.Take(5));
    }

    [Fact]
    public void Jitter_comes_from_the_injected_randomizer_so_schedules_are_reproducible()
    {
        List<TimeSpan> Run()
        {
            var random = new Random(42);
            var (scheduler, retries, pipeline) = Setup(NoJitter with { UseJitter = true, Randomizer = random.NextDouble });
            var xs = scheduler.CreateColdObservable(OnError<int>(Ms, Boom));
            scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 10_000 * Ms);
            return retries.Select(r => r.Delay).ToList();
        }

        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void A_fixed_delay_waits_the_same_time_before_every_attempt()
    {
        var (scheduler, retries, pipeline) = Setup(ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(250)));
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 1200 * Ms);

        xs.Subscriptions.Take(4).AssertEqual(
            Subscribe(S, S + 10 * Ms),
            Subscribe(S + 260 * Ms, S + 270 * Ms),
            Subscribe(S + 520 * Ms, S + 530 * Ms),
            Subscribe(S + 780 * Ms, S + 790 * Ms));
        Assert.All(retries, r => Assert.Equal(TimeSpan.FromMilliseconds(250), r.Delay));
    }

    [Fact]
    public void A_random_delay_is_drawn_between_min_and_max_from_the_randomizer()
    {
        var draws = new Queue<double>([0.0, 0.5, 0.999]);
        var options = ReconnectOptions.RandomBetween(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(40)) with { Randomizer = () => draws.Dequeue() };
        var (scheduler, retries, pipeline) = Setup(options);
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 100 * Ms);

        Assert.Equal([20.0, 30.0, 39.98], retries.Take(3).Select(r => Math.Round(r.Delay.TotalMilliseconds, 2)));
        xs.Subscriptions.Take(3).AssertEqual(
            Subscribe(S, S + 10 * Ms),
            Subscribe(S + 30 * Ms, S + 40 * Ms),
            Subscribe(S + 70 * Ms, S + 80 * Ms));
    }

    [Fact]
    public void An_attempt_limit_ends_the_sequence_with_the_last_error()
    {
        var (scheduler, retries, pipeline) = Setup(NoJitter with { MaxAttempts = 3 });
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        var res = scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 5000 * Ms);
        res.Messages.AssertEqual(OnError<int>(S + 740 * Ms, Boom));
        Assert.Equal(4, xs.Subscriptions.Count); // the first try and three retries
    }

    [Fact]
    public void Without_a_pipeline_the_first_error_ends_the_sequence()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnError<int>(20, Boom));
        var res = scheduler.Start(() => xs.RetryWith(() => null), created: Created, subscribed: S, disposed: S + 1000);
        res.Messages.AssertEqual(OnNext(S + 10, 1), OnError<int>(S + 20, Boom));
    }

    [Fact]
    public void Completion_of_the_source_completes_the_sequence()
    {
        var (scheduler, _, pipeline) = Setup(NoJitter);
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnCompleted<int>(20));
        var res = scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 1000);
        res.Messages.AssertEqual(OnNext(S + 10, 1), OnCompleted<int>(S + 20));
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 20));
    }

    [Fact]
    public void A_never_ending_source_is_subscribed_once_and_disposed_with_the_sequence()
    {
        var (scheduler, _, pipeline) = Setup(NoJitter);
        var xs = scheduler.CreateColdObservable<int>();
        var res = scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 1000);
        res.Messages.AssertEqual();
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 1000));
    }

    [Fact]
    public void A_resubscribe_request_bypasses_the_backoff()
    {
        var (scheduler, retries, pipeline) = Setup(NoJitter);
        var xs = scheduler.CreateColdObservable(OnNext(10, 1), OnError<int>(20, new ResubscribeNowException()));
        scheduler.Start(() => xs.RetryWith(pipeline).Take(3), created: Created, subscribed: S, disposed: S + 1000);
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 20), Subscribe(S + 20, S + 40), Subscribe(S + 40, S + 50));
        Assert.Empty(retries);
    }

    [Fact]
    public void Disposing_during_a_backoff_delay_stops_retrying()
    {
        var (scheduler, _, pipeline) = Setup(NoJitter);
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        scheduler.Start(() => xs.RetryWith(pipeline), created: Created, subscribed: S, disposed: S + 50 * Ms);
        scheduler.AdvanceTo(S + 5000 * Ms);
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 10 * Ms));
    }

    [Fact]
    public void Cutting_short_never_ends_a_running_subscription()
    {
        var (scheduler, _, pipeline) = Setup(NoJitter);
        var cut = new CancellationTokenSource();
        var xs = scheduler.CreateColdObservable<int>();
        scheduler.ScheduleAbsolute<object?>(null, S + 50 * Ms, (_, _) => { cut.Cancel(); return System.Reactive.Disposables.Disposable.Empty; });
        scheduler.Start(() => RetryWithPolicy.RetryWith(xs, pipeline, cutShort: () => cut.Token), created: Created, subscribed: S, disposed: S + 1000 * Ms);
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 1000 * Ms));
    }
}
