namespace Rx.Uhura.Server;

/// <summary>
/// A detached session's expiry: calls back once its time to live has passed on the server's <see cref="TimeProvider"/>,
/// however long that is (a .NET timer takes at most about 49.7 days, so a longer time is waited in steps), and never
/// once disposed (a resume).
/// </summary>
internal sealed class SessionExpiry : IDisposable
{
    /// <summary>The longest single wait a timer accepts: 4,294,967,294 ms.</summary>
    internal static readonly TimeSpan MaxStep = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly TimeProvider _time;
    private readonly Action<SessionExpiry> _expire;
    private readonly Lock _gate = new();
    private TimeSpan _left;
    private ITimer? _timer;
    private bool _disposed;

    /// <param name="time">The clock.</param>
    /// <param name="timeToLive">How long after <see cref="Start"/> the session expires (positive).</param>
    /// <param name="expire">Called once, on a timer's thread, with this expiry (to check that it is still the session's).</param>
    public SessionExpiry(TimeProvider time, TimeSpan timeToLive, Action<SessionExpiry> expire)
    {
        _time = time;
        _left = timeToLive;
        _expire = expire;
    }

    /// <summary>Starts counting (once the owner holds this expiry, so that a callback can recognize it).</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (!_disposed && _timer is null)
            {
                ArmLocked();
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
            _timer = null;
        }
    }

    private void ArmLocked()
    {
        var step = _left < MaxStep ? _left : MaxStep;
        _left -= step;
        _timer = _time.CreateTimer(static state => ((SessionExpiry)state!).Elapsed(), this, step, Timeout.InfiniteTimeSpan);
    }

    private void Elapsed()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _timer?.Dispose();
            if (_left > TimeSpan.Zero)
            {
                ArmLocked(); // the next step of a time to live longer than one timer takes
                return;
            }

            _disposed = true;
        }

        _expire(this);
    }
}
