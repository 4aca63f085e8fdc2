using System.Net;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Threading.Channels;
using Microsoft.Reactive.Testing;
using Polly;
using Polly.Retry;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Time;

/// <summary>The public retry operator on the four basic sources, on the virtual clock.</summary>
public class ObservableResilienceExtensionsTests : ReactiveTest
{
    private static readonly long Ms = TimeSpan.TicksPerMillisecond;
    private const long S = Subscribed;
    private static readonly Exception Boom = new InvalidOperationException("boom");

    private static ResiliencePipeline Retry(TestScheduler scheduler, DelayBackoffType backoff = DelayBackoffType.Constant, int attempts = 2) =>
        new ResiliencePipelineBuilder { TimeProvider = new SchedulerTimeProvider(scheduler) }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<InvalidOperationException>(),
                Delay = TimeSpan.FromMilliseconds(100),
                BackoffType = backoff,
                UseJitter = false,
                MaxRetryAttempts = attempts,
            })
            .Build();

    [Fact]
    public void A_never_ending_source_is_subscribed_once_and_disposed_with_the_subscription()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable<int>();
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)));
        res.Messages.AssertEqual();
        xs.Subscriptions.AssertEqual(Subscribe(Subscribed, Disposed));
    }

    [Fact]
    public void An_empty_source_completes_at_once_without_a_retry()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnCompleted<int>(10));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)));
        res.Messages.AssertEqual(OnCompleted<int>(S + 10));
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 10));
    }

    [Fact]
    public void A_single_value_source_passes_its_value_and_completion_through()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10, 42), OnCompleted<int>(20));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)));
        res.Messages.AssertEqual(OnNext(S + 10, 42), OnCompleted<int>(S + 20));
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 20));
    }

    [Fact]
    public void A_throwing_source_is_retried_after_each_delay_until_the_pipeline_gives_up_with_the_last_error()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)), Created, S, S + 1000 * Ms);
        xs.Subscriptions.AssertEqual(
            Subscribe(S, S + 10 * Ms),
            Subscribe(S + 110 * Ms, S + 120 * Ms),
            Subscribe(S + 220 * Ms, S + 230 * Ms));
        res.Messages.AssertEqual(OnError<int>(S + 230 * Ms, Boom));
    }

    [Fact]
    public void An_error_the_pipeline_does_not_handle_ends_the_sequence_without_a_retry()
    {
        var scheduler = new TestScheduler();
        var other = new ArgumentException("not handled");
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, other));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)), Created, S, S + 1000 * Ms);
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 10 * Ms));
        res.Messages.AssertEqual(OnError<int>(S + 10 * Ms, other));
    }

    [Fact]
    public void Disposing_during_a_backoff_wait_stops_retrying()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnError<int>(10 * Ms, Boom));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler)), Created, S, S + 50 * Ms);
        xs.Subscriptions.AssertEqual(Subscribe(S, S + 10 * Ms));
        res.Messages.AssertEqual();
        scheduler.AdvanceBy(1000 * Ms);
        Assert.Single(xs.Subscriptions);
    }

    [Fact]
    public void A_source_that_emitted_before_failing_starts_a_new_outage_each_time_and_waits_the_first_delay()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10 * Ms, 1), OnError<int>(20 * Ms, Boom));
        scheduler.Start(() => xs.RetryWith(Retry(scheduler, DelayBackoffType.Exponential)), Created, S, S + 400 * Ms);
        xs.Subscriptions.AssertEqual(
            Subscribe(S, S + 20 * Ms),
            Subscribe(S + 120 * Ms, S + 140 * Ms),
            Subscribe(S + 240 * Ms, S + 260 * Ms),
            Subscribe(S + 360 * Ms, S + 380 * Ms));
    }

    [Fact]
    public void A_source_that_emitted_without_progress_continues_the_backoff_until_the_pipeline_gives_up()
    {
        var scheduler = new TestScheduler();
        var xs = scheduler.CreateColdObservable(OnNext(10 * Ms, 1), OnError<int>(20 * Ms, Boom));
        var res = scheduler.Start(() => xs.RetryWith(Retry(scheduler, DelayBackoffType.Exponential), madeProgress: _ => false), Created, S, S + 1000 * Ms);
        xs.Subscriptions.AssertEqual(
            Subscribe(S, S + 20 * Ms),
            Subscribe(S + 120 * Ms, S + 140 * Ms),
            Subscribe(S + 340 * Ms, S + 360 * Ms));
        res.Messages.AssertEqual(OnNext(S + 10 * Ms, 1), OnNext(S + 130 * Ms, 1), OnNext(S + 350 * Ms, 1), OnError<int>(S + 360 * Ms, Boom));
    }
}

/// <summary>
/// The whole client's reconnect schedule over the in-memory transport, tick-exact on a <see cref="TestScheduler"/> that
/// drives Polly through a <see cref="SchedulerTimeProvider"/>.
/// </summary>
public class ClientReconnectScheduleTests : ReactiveTest
{
    private static readonly long Ms = TimeSpan.TicksPerMillisecond;

    private static readonly ReconnectOptions Doubling = new()
    {
        FirstDelay = TimeSpan.FromMilliseconds(100),
        MaxDelay = TimeSpan.FromSeconds(1),
        UseJitter = false,
    };

    [Fact]
    public void Refused_connects_are_retried_at_the_exact_ticks_of_the_backoff_until_the_attempt_limit()
    {
        var clock = new LockedClock();
        var transport = new RecordingTransport(new MemoryTransport(), clock);
        UhuraClient? client = null;
        var states = new List<ConnectionState>();
        clock.Scheduler.Schedule(TimeSpan.FromTicks(200), () =>
        {
            client = UhuraClient.Connect("memory://nobody", clock.Options(transport) with { Reconnect = Doubling with { MaxAttempts = 5 } });
            client.State.Subscribe(states.Add);
        });
        clock.AdvanceTo(200 + 10_000 * Ms);

        transport.Attempts.AssertEqual(
            Subscribe(200, 200),
            Subscribe(200 + 100 * Ms, 200 + 100 * Ms),
            Subscribe(200 + 300 * Ms, 200 + 300 * Ms),
            Subscribe(200 + 700 * Ms, 200 + 700 * Ms),
            Subscribe(200 + 1500 * Ms, 200 + 1500 * Ms),
            Subscribe(200 + 2500 * Ms, 200 + 2500 * Ms));
        var retries = states.Where(s => s.Status == ConnectionStatus.Reconnecting).ToList();
        Assert.Equal([1, 2, 3, 4, 5], retries.Select(s => s.Attempt));
        Assert.Equal(new[] { 100, 200, 400, 800, 1000 }.Select(ms => TimeSpan.FromMilliseconds(ms)), retries.Select(s => s.Delay));
        var closed = client!.CurrentState;
        Assert.Equal(ConnectionStatus.Closed, closed.Status);
        Assert.Equal(6, Assert.IsType<ReconnectFailedException>(closed.Error).Attempts);
    }

    [Fact]
    public void An_own_reconnect_pipeline_replaces_the_backoff_of_the_reconnect_options()
    {
        var clock = new LockedClock();
        var transport = new RecordingTransport(new MemoryTransport(), clock);
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = clock.Time }
            .AddRetry(new RetryStrategyOptions { Delay = TimeSpan.FromMilliseconds(50), BackoffType = DelayBackoffType.Constant, UseJitter = false, MaxRetryAttempts = 2 })
            .Build();
        UhuraClient? client = null;
        clock.Scheduler.Schedule(TimeSpan.FromTicks(200), () => client = UhuraClient.Connect("memory://nobody", clock.Options(transport) with { Reconnect = Doubling, ReconnectPipeline = pipeline }));
        clock.AdvanceTo(200 + 10_000 * Ms);

        transport.Attempts.AssertEqual(
            Subscribe(200, 200),
            Subscribe(200 + 50 * Ms, 200 + 50 * Ms),
            Subscribe(200 + 100 * Ms, 200 + 100 * Ms));
        Assert.Equal(ConnectionStatus.Closed, client!.CurrentState.Status);
        Assert.IsType<UhuraException>(client.CurrentState.Error);
    }

    [Fact]
    public async Task A_peer_that_drops_every_link_before_delivering_anything_does_not_reset_the_backoff()
    {
        var clock = new LockedClock();
        var memory = new MemoryTransport();
        await using var poison = new UhuraServer(UhuraServerOptions.Default with { Transport = memory });
        var serverLinks = Channel.CreateUnbounded<Connection>();
        poison.Connections.Subscribe(link => serverLinks.Writer.TryWrite(link));
        await poison.ListenAsync("memory://poison");

        var transport = new RecordingTransport(memory, clock);
        var retries = Channel.CreateUnbounded<ConnectionState>();
        UhuraClient? client = null;
        clock.AdvanceTo(200);
        lock (clock.Gate)
        {
            client = UhuraClient.Connect("memory://poison", clock.Options(transport) with { Reconnect = Doubling });
        }

        using var _ = client;
        client.State.Where(s => s.Status == ConnectionStatus.Reconnecting).Subscribe(s => retries.Writer.TryWrite(s));
        var links = 0;
        var fourLinks = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var drops = new List<Task>();
        client.Connections.Subscribe(link =>
        {
            // The client has this link (its handshake is done on both sides): the server drops it before anything is
            // delivered either way. (Dropped by the server as soon as its own side was ready, the client sometimes had
            // not read the Welcome yet, and saw no link at all: '3 links', then a wait for a fourth that never came.)
            lock (drops)
            {
                drops.Add(DropServerSideAsync());
            }

            if (Interlocked.Increment(ref links) == 4)
            {
                fourLinks.TrySetResult();
            }
        });

        async Task DropServerSideAsync() => (await serverLinks.Reader.ReadAsync()).Dispose();

        // Each link completes its handshake (real pipes), is dropped at once, and the next attempt waits a doubled delay.
        foreach (var expected in new[] { 100, 200, 400, 800 })
        {
            var retry = await retries.Reader.ReadAsync().AsTask().For();
            Assert.Equal(TimeSpan.FromMilliseconds(expected), retry.Delay);
            await clock.WhenArmedAsync(retry.Delay).For();
            clock.AdvanceBy(retry.Delay.Ticks);
        }

        transport.Attempts.Take(5).AssertEqual(
            Subscribe(200, 200),
            Subscribe(200 + 100 * Ms, 200 + 100 * Ms),
            Subscribe(200 + 300 * Ms, 200 + 300 * Ms),
            Subscribe(200 + 700 * Ms, 200 + 700 * Ms),
            Subscribe(200 + 1500 * Ms, 200 + 1500 * Ms));
        // The attempts did connect: it is the links that dropped.
        await fourLinks.Task.For();
        Task[] dropped;
        lock (drops)
        {
            dropped = [.. drops];
        }

        await Task.WhenAll(dropped).For();
    }

    /// <summary>
    /// A test scheduler whose queue is touched under one lock: the client arms timers from pipe threads while the test
    /// advances the clock. Reports each timer armed, for the test to wait on before it advances.
    /// </summary>
    private sealed class LockedClock
    {
        private readonly Channel<TimeSpan> _armed = Channel.CreateUnbounded<TimeSpan>();

        public LockedClock()
        {
            Time = new ReportingTimeProvider(this, new SchedulerTimeProvider(Scheduler));
        }

        public object Gate { get; } = new();

        public TestScheduler Scheduler { get; } = new();

        public TimeProvider Time { get; }

        public UhuraClientOptions Options(ITransport transport) => new()
        {
            Transport = transport,
            Connection = ConnectionOptions.Default with { TimeProvider = Time },
        };

        public void AdvanceTo(long tick)
        {
            lock (Gate)
            {
                Scheduler.AdvanceTo(tick);
            }
        }

        public void AdvanceBy(long ticks)
        {
            lock (Gate)
            {
                Scheduler.AdvanceBy(ticks);
            }
        }

        public async Task WhenArmedAsync(TimeSpan dueTime)
        {
            while (await _armed.Reader.ReadAsync() != dueTime)
            {
            }
        }

        private sealed class ReportingTimeProvider(LockedClock owner, TimeProvider inner) : TimeProvider
        {
            public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

            public override long TimestampFrequency => inner.TimestampFrequency;

            public override long GetTimestamp() => inner.GetTimestamp();

            public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
            {
                ITimer timer;
                lock (owner.Gate)
                {
                    timer = new LockedTimer(owner, inner.CreateTimer(callback, state, dueTime, period));
                }

                owner._armed.Writer.TryWrite(dueTime);
                return timer;
            }
        }

        private sealed class LockedTimer(LockedClock owner, ITimer inner) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                bool changed;
                lock (owner.Gate)
                {
                    changed = inner.Change(dueTime, period);
                }

                owner._armed.Writer.TryWrite(dueTime);
                return changed;
            }

            public void Dispose()
            {
                lock (owner.Gate)
                {
                    inner.Dispose();
                }
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }

    /// <summary>Records each connect attempt as a subscription: from the tick it started to the tick it was refused or its stream ended.</summary>
    private sealed class RecordingTransport(ITransport inner, LockedClock clock) : ITransport
    {
        private readonly List<Subscription> _attempts = [];

        public IReadOnlyList<Subscription> Attempts
        {
            get
            {
                lock (_attempts)
                {
                    return [.. _attempts];
                }
            }
        }

        public ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default) => inner.BindAsync(endPoint, cancellationToken);

        public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        {
            var started = clock.Scheduler.Clock;
            try
            {
                return await inner.ConnectAsync(endPoint, cancellationToken);
            }
            finally
            {
                lock (_attempts)
                {
                    _attempts.Add(new Subscription(started, clock.Scheduler.Clock));
                }
            }
        }
    }
}
