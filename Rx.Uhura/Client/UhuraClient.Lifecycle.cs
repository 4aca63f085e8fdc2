using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

public sealed partial class UhuraClient
{
    /// <summary>
    /// Closes for good (uhura's <c>disconnect()</c>): waits for the link if it is still being opened, sends everything
    /// queued, waits for acknowledgements (up to <see cref="ConnectionOptions.CloseTimeout"/>), then closes the socket.
    /// Idempotent. A client made by <see cref="Create(string, UhuraClientOptions?)"/> and never started closes at once:
    /// what it queued fails with <see cref="ConnectionLostException"/>.
    /// </summary>
    public Task Disconnect()
    {
        lock (_gate)
        {
            return _disconnectTask ??= DisconnectCoreAsync();
        }
    }

    /// <inheritdoc cref="Disconnect"/>
    public ValueTask DisposeAsync() => new(Disconnect());

    /// <summary>Closes at once: the link is aborted and unsent events fail.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _closing = true;
            _disconnectTask ??= Task.CompletedTask;
        }

        _linkSubscription.Dispose();
        Connection?.Dispose();
        Finish(new ConnectionState(ConnectionStatus.Closed), null);
    }

    private async Task DisconnectCoreAsync()
    {
        Connection? link;
        bool started;
        lock (_gate)
        {
            _closing = true;
            link = _link;
            started = Volatile.Read(ref _generation) != 0; // a created client never started has no link to wait for
        }

        if (link is null && started && _state.Value.Status == ConnectionStatus.Connecting)
        {
            // Still opening the socket: wait for it (bounded), so what was queued is flushed.
            try
            {
                await State.Where(s => s.Status != ConnectionStatus.Connecting || Connection is not null)
                    .Take(1).ToTask().WaitAsync(_options.ConnectTimeout, _options.Connection.TimeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            link = Connection;
        }

        if (link is not null)
        {
            await link.CloseAsync().ConfigureAwait(false);
        }

        _linkSubscription.Dispose();
        Finish(new ConnectionState(ConnectionStatus.Closed), null);
    }

    private void Finish(ConnectionState closed, Exception? error)
    {
        List<OutboundMessage> queued;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _closing = true;
            queued = [.. _queue];
            _queue.Clear();
            _requeuedAhead = 0;
            _queuedBytes = 0;
        }

        foreach (var message in queued)
        {
            message.Fail(new ConnectionLostException(message.Name, error));
        }

        Diagnostics.UhuraMetrics.ClientEnded(this);
        SetState(closed);
        _dropped.OnCompleted();
        lock (_stateGate)
        {
            _stateCompleted = true;
            _state.OnCompleted();
        }

        // Events completes after the events already queued were delivered (never on a read loop, never under a lock).
        _dispatcher.Complete();
        _ = _dispatcher.Completion.ContinueWith(static (_, state) => ((UhuraClient)state!).CompleteStreams(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _finished.TrySetResult();
    }

    private void CompleteStreams()
    {
        _events.OnCompleted();
        Session.Complete();
        _errors.OnCompleted();
    }

    private void ReportSubscriberError(SubscriberException error)
    {
        _logger.LogError(error.InnerException, "A subscriber of {Stream} threw (event {Event})", error.StreamName, error.EventName);
        _errors.OnNext(error);
    }

    /// <summary>State notifications come from the link task and from <see cref="Disconnect"/>: one at a time, none after Closed.</summary>
    private void SetState(ConnectionState state)
    {
        lock (_stateGate)
        {
            if (_state.Value.Status == ConnectionStatus.Closed || (Volatile.Read(ref _closed) && state.Status != ConnectionStatus.Closed))
            {
                return;
            }

            _state.OnNext(state);
        }
    }
}
