using System.Reactive.Linq;
using System.Runtime.ExceptionServices;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Polly;
using Polly.Retry;
using Rx.Uhura.Internal;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Mesh;

/// <summary>Listening, accepting and dialling: how links come to be.</summary>
public sealed partial class UhuraNode
{
    /// <summary>
    /// Listens on <paramref name="endpointUri"/> (<c>tcp://HOST:PORT</c>, port 0 for a free one; <c>tls://HOST:PORT</c>
    /// with <see cref="UhuraNodeOptions.Tls"/>; or <c>unix:///PATH</c>) and returns <see cref="Info"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The node already listens, or is closed.</exception>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without <see cref="UhuraNodeOptions.Tls"/> or a server certificate.</exception>
    public async Task<string> ListenAsync(string endpointUri, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpointUri);
        var endPoint = UhuraEndpoint.Parse(endpointUri);
        TransportFor(endPoint); // a tls:// endpoint without TLS options throws here
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_listener is not null || _info is not null)
            {
                throw new InvalidOperationException("The node already listens.");
            }

            _info = string.Empty; // reserved while binding
        }

        ITransportListener listener;
        try
        {
            listener = await TransportFor(endPoint).BindAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            lock (_gate)
            {
                _info = null;
            }

            throw;
        }

        var info = UhuraEndpoint.Format(listener.EndPoint);
        lock (_gate)
        {
            if (_closed)
            {
                _ = listener.DisposeAsync();
                throw new ObjectDisposedException(nameof(UhuraNode));
            }

            _listener = listener;
            _info = info;
            _acceptLoop = AcceptLoopAsync(listener);
        }

        _logger.LogInformation("Node {NodeId} listens on {Info}", Id, info);
        _listening.OnNext(info);
        Raise(new NodeEvent(NodeEventKind.Listening) { Info = info });
        return info;
    }

    /// <summary>
    /// Connects to the node at <paramref name="uri"/> and returns its id once the two can talk. When the two nodes are
    /// already connected, or dial each other at the same moment, one connection survives and this returns as well.
    /// </summary>
    /// <param name="uri">The other node's <see cref="Info"/>.</param>
    /// <param name="keep">Whether to keep the peer: reconnect it with backoff when the link drops. Default true (masterless's README; its code does not).</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <exception cref="PeerRefusedException">The handshake refused the connection (other channel, itself, full, timeout).</exception>
    /// <exception cref="IOException">The socket could not be opened or was lost during the handshake.</exception>
    /// <exception cref="TlsException">A <c>tls://</c> peer's certificate was refused, or the TLS handshake failed.</exception>
    /// <exception cref="ArgumentException">A <c>tls://</c> URI without <see cref="UhuraNodeOptions.Tls"/>.</exception>
    public async Task<string> ConnectAsync(string uri, bool keep = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        TransportFor(UhuraEndpoint.Parse(uri)); // a bad URI, or tls:// without TLS options, throws here, before anything else
        if (Protocol == MeshProtocol.Masterless && Info is not { Length: > 0 })
        {
            throw new InvalidOperationException("A masterless node announces its address in the handshake: call ListenAsync before ConnectAsync.");
        }

        // Each subscription is one attempt; the only one retried is a masterless dial dropped before the peer said who
        // it is (see ConnectOnceAsync), twice, FirstDelay apart: the same re-subscription operator as every redial.
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = Time }.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception is LookAgainException),
            BackoffType = DelayBackoffType.Constant,
            Delay = Options.Reconnect.FirstDelay,
            UseJitter = false,
            MaxRetryAttempts = 2,
        }).Build();
        try
        {
            return await Observable.FromAsync(token => ConnectOnceAsync(uri, keep, token))
                .RetryWith(pipeline)
                .ToTask(cancellationToken)
                .ConfigureAwait(false);
        }
        catch (LookAgainException lookAgain)
        {
            ExceptionDispatchInfo.Throw(lookAgain.InnerException!); // the attempts ran out: the peer was lost
            throw;
        }
    }

    /// <summary>One attempt of <see cref="ConnectAsync"/>.</summary>
    private async Task<string> ConnectOnceAsync(string uri, bool keep, CancellationToken cancellationToken)
    {
        if (ConnectedAt(uri) is { } known)
        {
            // Already connected to the node at that address (it dialled us, or an earlier call did).
            if (keep)
            {
                Keep(known, true);
            }

            return known;
        }

        var link = await DialAsync(uri, expectedId: null, keep, cancellationToken).ConfigureAwait(false);
        try
        {
            return await link.Handshake.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (DialedNodeId(link) is { } id && (ex is PeerRefusedException { Reason: PeerRefusal.Duplicate } || HasOtherLink(link, id)))
        {
            // De-duplication kept another connection between the two nodes: the peer is (or is about to be) connected.
            await WhenConnectedAsync(id, cancellationToken).ConfigureAwait(false);
            if (keep)
            {
                Keep(id, true);
            }

            return id;
        }
        catch (PeerLostException lost) when (DialedNodeId(link) is null && !cancellationToken.IsCancellationRequested)
        {
            // A masterless node closes a second connection from a node it is already connecting to before saying
            // who it is: the other connection is on its way. Look again shortly.
            throw new LookAgainException(lost);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            link.Abort(null);
            throw;
        }
    }

    /// <summary>A dial lost before the peer said who it is: <see cref="ConnectAsync"/> looks again.</summary>
    private sealed class LookAgainException(PeerLostException lost) : Exception(lost.Message, lost);

    /// <summary>The id of a connected peer whose address is <paramref name="uri"/>, if any.</summary>
    private string? ConnectedAt(string uri)
    {
        lock (_gate)
        {
            return _peers.Values.FirstOrDefault(p => p.Link is { Phase: LinkPhase.Stable } && string.Equals(p.Address, uri, StringComparison.OrdinalIgnoreCase))?.Id;
        }
    }

    private async Task AcceptLoopAsync(ITransportListener listener)
    {
        await Task.Yield();
        while (true)
        {
            Stream? stream;
            try
            {
                stream = await listener.AcceptAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
            {
                _logger.LogWarning(ex, "Node {NodeId}: accept failed", Id);
                continue;
            }

            if (stream is null)
            {
                return;
            }

            var link = new MeshLink(this, stream, outgoing: false, dialedUri: null, expectedId: null);
            lock (_gate)
            {
                if (_closed)
                {
                    stream.Dispose();
                    return;
                }

                _links.Add(link);
                CountOpenLinksLocked();
            }

            PublishOpenLinks();
            Raise(new NodeEvent(NodeEventKind.Connect));
            link.Start();
        }
    }

    /// <summary>The transport for an endpoint: TLS over <see cref="UhuraNodeOptions.Transport"/> for <c>tls://</c>.</summary>
    private ITransport TransportFor(System.Net.EndPoint endPoint) => TlsTransport.For(endPoint, Options.Transport, Options.Tls, nameof(UhuraNodeOptions), Time);

    /// <summary>Opens a socket to <paramref name="uri"/> and starts an outgoing handshake on it.</summary>
    private async Task<MeshLink> DialAsync(string uri, string? expectedId, bool keep, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        var endPoint = UhuraEndpoint.Parse(uri);
        using var timeout = new CancellationTokenSource(Options.HandshakeTimeout, Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _closing.Token);
        Stream stream;
        try
        {
            stream = await TransportFor(endPoint).ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PeerRefusedException(PeerRefusal.Timeout, $"Connecting to {uri} took longer than {Options.HandshakeTimeout.TotalSeconds:0.###} s.", expectedId);
        }

        var link = new MeshLink(this, stream, outgoing: true, uri, expectedId) { KeepIntent = keep };
        lock (_gate)
        {
            if (_closed)
            {
                stream.Dispose();
                throw new ObjectDisposedException(nameof(UhuraNode));
            }

            _links.Add(link);
            CountOpenLinksLocked();
        }

        PublishOpenLinks();
        Raise(new NodeEvent(NodeEventKind.Connect) { PeerId = expectedId });
        link.Start();
        link.Enqueue(Wire.Hello(Id, Info, Options.Channel, _incarnation));
        return link;
    }

    private bool HasOtherLink(MeshLink link, string id)
    {
        lock (_gate)
        {
            return _links.Any(l => l != link && l.RemoteId == id && !l.IsClosing);
        }
    }
}
