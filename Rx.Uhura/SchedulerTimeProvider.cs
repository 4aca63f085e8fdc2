using System.Reactive.Concurrency;
using System.Reactive.Disposables;

namespace Rx.Uhura;

/// <summary>
/// A <see cref="TimeProvider"/> that follows an Rx <see cref="IScheduler"/>: its clock is the scheduler's clock and its
/// timers are scheduler work items. With a virtual-time scheduler (a test scheduler, <see cref="HistoricalScheduler"/>)
/// one clock drives both the Rx operators and everything that takes a <see cref="TimeProvider"/> (Polly, timeouts).
/// </summary>
public sealed class SchedulerTimeProvider : TimeProvider
{
    private readonly IScheduler _scheduler;
    private readonly Lock _gate = new();

    /// <summary>Creates a time provider over <paramref name="scheduler"/>.</summary>
    public SchedulerTimeProvider(IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        _scheduler = scheduler;
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => _scheduler.Now;

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc/>
    public override long GetTimestamp() => _scheduler.Now.UtcTicks;

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckTimerSpan(dueTime, nameof(dueTime));
        CheckTimerSpan(period, nameof(period));
        var timer = new SchedulerTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>
    /// The bounds <see cref="TimeProvider.System"/>'s timers take (-1 ms for infinite, up to 4,294,967,294 ms): a virtual
    /// clock that accepted more would hide, in tests, a wait that fails in production.
    /// </summary>
    private static void CheckTimerSpan(TimeSpan value, string name)
    {
        if (value != Timeout.InfiniteTimeSpan && (value < TimeSpan.Zero || value > Internal.TimeoutChecks.Max))
        {
            throw new ArgumentOutOfRangeException(name, value, $"A timer takes {Timeout.InfiniteTimeSpan} or 0 to {Internal.TimeoutChecks.Max}, as TimeProvider.System does.");
        }
    }

    private sealed class SchedulerTimer(SchedulerTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private readonly SerialDisposable _pending = new();
        private TimeSpan _period = Timeout.InfiniteTimeSpan;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            CheckTimerSpan(dueTime, nameof(dueTime));
            CheckTimerSpan(period, nameof(period));
            lock (owner._gate)
            {
                if (_disposed)
                {
                    return false;
                }

                _period = period;
                _pending.Disposable = dueTime == Timeout.InfiniteTimeSpan ? Disposable.Empty : Arm(dueTime);
                return true;
            }
        }

        public void Dispose()
        {
            lock (owner._gate)
            {
                _disposed = true;
                _pending.Dispose();
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        private IDisposable Arm(TimeSpan dueTime) => owner._scheduler.Schedule(Max(dueTime), () =>
        {
            // Like the system's timers, fire with no SynchronizationContext: what the callback completes continues inline
            // on the scheduler instead of being posted to whatever context the code advancing the clock has.
            var previous = SynchronizationContext.Current;
            SynchronizationContext.SetSynchronizationContext(null);
            try
            {
                callback(state);
            }
            finally
            {
                SynchronizationContext.SetSynchronizationContext(previous);
            }

            lock (owner._gate)
            {
                if (!_disposed && _period != Timeout.InfiniteTimeSpan && _period > TimeSpan.Zero)
                {
                    _pending.Disposable = Arm(_period);
                }
            }
        });

        private static TimeSpan Max(TimeSpan t) => t < TimeSpan.Zero ? TimeSpan.Zero : t;
    }
}
