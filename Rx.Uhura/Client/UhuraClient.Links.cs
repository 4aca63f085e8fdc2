using System.Net;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

public sealed partial class UhuraClient
{
    /// <summary>Starts connecting a client made by <see cref="Create(EndPoint, UhuraClientOptions?)"/> (once; ignored after the first call or once closing).</summary>
    internal void BeginConnecting()
    {
        lock (_gate)
        {
            if (_closing || Volatile.Read(ref _generation) != 0)
            {
                return;
            }
        }

        Start();
    }

    /// <summary>
    /// Turns automatic reconnection on (uhura's <c>autoReconnect()</c>), or changes its settings: from the next failure on,
    /// a lost link or a failed attempt is retried with the backoff of <paramref name="options"/> (default
    /// <see cref="ReconnectOptions.Default"/>: 100 ms doubling to 60 s, with jitter).
    /// </summary>
    public void AutoReconnect(ReconnectOptions? options = null) => SetReconnect(options ?? ReconnectOptions.Default);

    /// <summary>uhura's <c>autoReconnect(min, max)</c>: reconnect with a backoff from <paramref name="firstDelay"/> up to <paramref name="maxDelay"/>.</summary>
    public void AutoReconnect(TimeSpan firstDelay, TimeSpan maxDelay)
        => AutoReconnect(ReconnectOptions.Default with { FirstDelay = firstDelay, MaxDelay = maxDelay });

    /// <summary>
    /// Drops the current socket, or cuts short a backoff wait, and connects again at once (uhura's <c>reconnect()</c>).
    /// Unacknowledged sends are resent on the new link; the session is resumed. Ignored once the client is closing.
    /// </summary>
    public void Reconnect()
    {
        CancellationTokenSource? now = null;
        lock (_gate)
        {
            if (_closing)
            {
                return;
            }

            if (Volatile.Read(ref _generation) != 0)
            {
                now = _reconnectNow;
                _reconnectNow = new CancellationTokenSource();
            }
        }

        if (now is null)
        {
            Start(); // never started: start now
            return;
        }

        // The same path as any drop: the current link (or attempt) ends, hands its unacknowledged sends back to the queue,
        // and only then does the retry loop subscribe again, at once, for the next link. Never two links at a time.
        now.Cancel();
    }

    /// <summary>The token the current link, attempt or backoff wait ends on when <see cref="Reconnect"/> is called.</summary>
    private CancellationToken ReconnectNowToken
    {
        get
        {
            lock (_gate)
            {
                return _reconnectNow.Token;
            }
        }
    }

    private bool IsClosing
    {
        get
        {
            lock (_gate)
            {
                return _closing;
            }
        }
    }

    private void SetReconnect(ReconnectOptions options)
    {
        options.Validate();
        var pipeline = ReconnectPipeline.Build(options, _options.Connection.TimeProvider, (attempt, delay, error) =>
        {
            Volatile.Write(ref _lastAttempt, attempt);
            Diagnostics.UhuraMetrics.ReconnectAttempts.Add(1);
            SetState(new ConnectionState(ConnectionStatus.Reconnecting) { Attempt = attempt, Delay = delay, Error = error });
        });
        lock (_gate)
        {
            _reconnect = options;
            _pipeline = pipeline;
        }
    }

    /// <summary>
    /// The connect sequence: each subscription opens a socket, runs the handshake, emits the link, and then ends with
    /// an error when the link drops (or completes when this side closed it). Reconnecting is re-subscribing. A
    /// subscription ends only once its link has fully shut down and handed its undelivered sends back to the queue, so
    /// the next link never overlaps it; <see cref="Reconnect"/> ends it with <see cref="ResubscribeNowException"/>.
    /// </summary>
    internal IObservable<Connection> Links => Observable.Create<Connection>((observer, cancellationToken) => RetryWithPolicy.ObserveFaults(LinkOnceAsync(observer, cancellationToken)));

    /// <summary>One subscription of <see cref="Links"/>.</summary>
    private async Task LinkOnceAsync(IObserver<Connection> observer, CancellationToken cancellationToken)
    {
        var reconnectNow = ReconnectNowToken;
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, reconnectNow);
        bool Forced() => reconnectNow.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
        SetState(new ConnectionState(ConnectionStatus.Connecting));
        Connection link;
        try
        {
            link = await OpenLinkAsync(attempt.Token).ConfigureAwait(false);
        }
        catch (Exception) when (Forced())
        {
            observer.OnError(new ResubscribeNowException()); // Reconnect() during the attempt: a new one, at once
            return;
        }

        using var abort = attempt.Token.Register(link.Dispose);
        observer.OnNext(link);
        var isReconnect = Interlocked.Exchange(ref _connectedBefore, 1) != 0;
        link.OnClientConnected();
        if (isReconnect)
        {
            Diagnostics.UhuraMetrics.Reconnects.Add(1);
        }

        SetState(new ConnectionState(ConnectionStatus.Connected) { Resumed = link.Resumed, IsReconnect = isReconnect });

        // Never inline in whoever ended the link (a Reconnect() caller is still inside its cancellation callbacks).
        var info = await link.Disconnected.ToTask(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        Detach(link);
        if (info.Reason == DisconnectReason.LocalClose && IsClosing)
        {
            observer.OnCompleted();
        }
        else if (Forced())
        {
            SetState(new ConnectionState(ConnectionStatus.Disconnected) { Disconnect = info });
            observer.OnError(new ResubscribeNowException());
        }
        else
        {
            SetState(new ConnectionState(ConnectionStatus.Disconnected) { Disconnect = info });
            observer.OnError(new UhuraException($"The connection was lost ({info.Reason}).", info.Error) { ConnectionId = link.Id });
        }
    }

    /// <summary>
    /// Opens a socket and runs the handshake under one deadline (<see cref="UhuraClientOptions.ConnectTimeout"/>,
    /// armed before the socket opens). The link is attached (events forwarded, queue handed over) before the handshake
    /// completes, because a server may send events ahead of <c>connect</c>.
    /// </summary>
    private async Task<Connection> OpenLinkAsync(CancellationToken cancellationToken)
    {
        var attempt = Interlocked.Increment(ref _attemptsSinceConnected);
        var activity = Diagnostics.UhuraActivities.StartDetached(Diagnostics.UhuraActivities.Connect, System.Diagnostics.ActivityKind.Client);
        if (activity is null)
        {
            var opened = await OpenLinkCoreAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _attemptsSinceConnected, 0);
            return opened;
        }

        activity.SetTag("uhura.endpoint", _endpoint);
        activity.SetTag("uhura.protocol", Diagnostics.UhuraMetrics.ProtocolName(_options.Protocol));
        activity.SetTag("uhura.connect.attempt", attempt);
        activity.SetTag("uhura.session.presented", Session.Id);
        try
        {
            var link = await OpenLinkCoreAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _attemptsSinceConnected, 0);
            activity.SetTag("uhura.connection.id", link.Id);
            activity.SetTag("uhura.session.id", Session.Id);
            activity.SetTag("uhura.session.resumed", link.Resumed);
            Diagnostics.UhuraActivities.Stop(activity, "connected");
            return link;
        }
        catch (Exception ex)
        {
            Diagnostics.UhuraActivities.Stop(activity, ex switch
            {
                AuthenticationFailedException => "refused",
                OperationCanceledException => "canceled",
                _ => "failed",
            }, ex is OperationCanceledException ? null : ex);
            throw;
        }
    }

    private async Task<Connection> OpenLinkCoreAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var timer = _options.Connection.TimeProvider.CreateTimer(static d => ((CancellationTokenSource)d!).Cancel(), deadline, _options.ConnectTimeout, Timeout.InfiniteTimeSpan);
        Stream stream;
        try
        {
            stream = await _openStream(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UhuraException($"Connecting timed out after {_options.ConnectTimeout.TotalSeconds} s.");
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or InvalidOperationException)
        {
            throw new UhuraException($"Connecting failed: {ex.Message}", ex);
        }

        var link = Rx.Uhura.Connection.CreateClientSide(stream, Session, _options.Connection, _idPrefix, _options.Protocol, _nativeStream, _options.AuthToken, _dispatcher);
        link.UndeliveredHandler = Requeue;
        link.ForwardEventsTo = _events; // by the client's one dispatcher, after the link's own subscribers: in order across links
        link.ErrorSink = _errors.OnNext;
        Attach(link);
        link.Start();
        try
        {
            if (await link.WhenReady.WaitAsync(deadline.Token).ConfigureAwait(false))
            {
                return link;
            }

            // The link ended during the handshake: a failed attempt, not a connection.
            Detach(link);
            var info = await link.Disconnected.ToTask(CancellationToken.None).ConfigureAwait(false);
            if (info.Error is AuthenticationFailedException refused)
            {
                throw refused; // not retried: the same credentials would be refused again
            }

            if (info.Error is SessionInUseException inUse)
            {
                throw inUse; // retried: the session is this client's once the other client's link is gone
            }

            // Whatever ended it, the next Hello leaves out the instance id: this server may not read it (a rolling
            // upgrade can put an older server behind the same address), and the next Welcome says whether it does.
            lock (_nativeStream.Gate)
            {
                _nativeStream.ServerReadsInstances = false;
            }

            throw new UhuraException($"The connection ended during the handshake ({info.Reason}).", info.Error) { ConnectionId = link.Id };
        }
        catch (OperationCanceledException)
        {
            link.Dispose();
            await link.ShutdownCompleted.ConfigureAwait(false); // its queued sends are back in the queue before the next link takes it
            Detach(link);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new UhuraException($"The server did not complete the handshake within {_options.ConnectTimeout.TotalSeconds} s.") { ConnectionId = link.Id };
        }
    }

    /// <summary>
    /// Subscribes to the connect sequence (once per client), retried with the reconnect backoff when one is set. A
    /// forced reconnect does not subscribe again: it ends the current link, and the retry loop follows up at once.
    /// </summary>
    private void Start()
    {
        if (Interlocked.CompareExchange(ref _generation, 1, 0) != 0)
        {
            return;
        }

        _linkSubscription.Disposable = Links.RetryWith(() => Volatile.Read(ref _pipeline), cutShort: () => ReconnectNowToken).Subscribe(
            _ => { },
            error =>
            {
                if (error is not AuthenticationFailedException && Volatile.Read(ref _reconnect) is { MaxAttempts: not null })
                {
                    error = new ReconnectFailedException(Volatile.Read(ref _lastAttempt), error);
                }

                _logger.LogWarning(error, "The client's connection ended");
                Finish(new ConnectionState(ConnectionStatus.Closed) { Error = error, Disconnect = _state.Value.Disconnect }, error);
            },
            () => Finish(new ConnectionState(ConnectionStatus.Closed), null));
    }

    /// <summary>A new link takes over the queued sends.</summary>
    private void Attach(Connection link)
    {
        lock (_gate)
        {
            _link = link;
            link.EnqueueRange(_queue);
            _queue.Clear();
            _requeuedAhead = 0;
            _queuedBytes = 0;
        }
    }

    private void Detach(Connection link)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_link, link))
            {
                _link = null;
            }
        }
    }
}
