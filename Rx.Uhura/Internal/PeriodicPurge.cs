using Microsoft.Extensions.Logging;

namespace Rx.Uhura.Internal;

/// <summary>
/// The background purge of a durable session store: runs the store's purge every interval on a
/// <see cref="TimeProvider"/> timer, one pass at a time (a tick during a pass asks for one more pass after it, on the
/// newer clock). A pass never throws: the rows it deleted are logged at debug level, its failure as an error, except a
/// cancellation or <see cref="ObjectDisposedException"/> caused by the store closing.
/// </summary>
internal sealed class PeriodicPurge : IAsyncDisposable
{
    private readonly Func<CancellationToken, Task<int>> _purge;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly ITimer _timer;
    private Task _running = Task.CompletedTask;
    private bool _purging;
    private bool _purgeAgain;
    private bool _stopped;
    private bool _disposed;

    /// <summary>Starts the timer; the first pass runs one <paramref name="interval"/> from now.</summary>
    /// <param name="purge">One pass: deletes the expired rows and returns how many.</param>
    /// <param name="interval">The time between passes (positive).</param>
    /// <param name="timeProvider">The clock of the timer.</param>
    /// <param name="logger">Where passes and their failures are logged.</param>
    public PeriodicPurge(Func<CancellationToken, Task<int>> purge, TimeSpan interval, TimeProvider timeProvider, ILogger logger)
    {
        _purge = purge;
        _logger = logger;
        _timer = timeProvider.CreateTimer(static state => ((PeriodicPurge)state!).Start(), this, interval, interval);
    }

    /// <summary>
    /// No pass starts after this, and a running one ends after its current pass, its failure from the closing store not
    /// logged. Cheap and idempotent: the owner calls it where it marks itself disposed, then awaits
    /// <see cref="DisposeAsync"/>.
    /// </summary>
    public void Stop()
    {
        lock (_gate)
        {
            _stopped = true;
        }
    }

    /// <summary>Stops, disposes the timer, cancels the running pass and waits for it. Idempotent; never throws.</summary>
    public async ValueTask DisposeAsync()
    {
        Task running;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stopped = true;
            running = _running;
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
        await _closing.CancelAsync().ConfigureAwait(false);
        await running.ConfigureAwait(false); // RunAsync never throws
        _closing.Dispose();
    }

    private void Start()
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }

            if (_purging)
            {
                _purgeAgain = true; // a tick during a purge: one more run after it, on the newer clock
                return;
            }

            _purging = true;
            _running = RunAsync(_closing.Token);
        }
    }

    /// <summary>Purges until no tick came during the last run. Never throws.</summary>
    private async Task RunAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        while (true)
        {
            try
            {
                var deleted = await _purge(cancellationToken).ConfigureAwait(false);
                if (deleted > 0)
                {
                    _logger.LogDebug("Purged {Count} expired session rows", deleted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException && (cancellationToken.IsCancellationRequested || Volatile.Read(ref _stopped)))
            {
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Purging expired sessions failed");
            }

            lock (_gate)
            {
                if (!_purgeAgain || _stopped)
                {
                    _purging = false;
                    _purgeAgain = false;
                    return;
                }

                _purgeAgain = false;
            }
        }
    }
}
