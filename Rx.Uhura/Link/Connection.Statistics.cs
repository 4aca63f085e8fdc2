using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

/// <summary>
/// Per-connection counters (<see cref="GetStatistics"/>) and the statistics request of the native protocol: a client
/// sends the reserved event <c>_stats</c> with a request number; a server that exposes statistics answers
/// <c>_stats [number, snapshot]</c>, one that does not <c>_stats [number, null, reason]</c>. Both are ordinary
/// sequenced, acknowledged events, never delivered to <see cref="Events"/>.
/// </summary>
public sealed partial class Connection
{
    /// <summary>The reserved event name of statistics requests and replies (names starting with '_' are the protocol's).</summary>
    internal const string StatisticsEvent = "_stats";

    private static long s_nextStatisticsRequest;

    // Counters: each has one writer at a time (the read loop; the writer of _gate or the single write loop), read with Volatile.
    private long _eventsIn;
    private long _eventsOut;
    private long _bytesIn;
    private long _bytesOut;
    private DateTimeOffset _connectedSince;
    private string? _remoteEndPoint;
    private ConcurrentDictionary<long, TaskCompletionSource<ServerStatistics>>? _statisticsRequests;

    /// <summary>
    /// A snapshot of this connection's counters: events and bytes in and out since it was made, sends waiting for
    /// acknowledgement and for the socket. Cheap; safe from any thread.
    /// </summary>
    public ConnectionStatistics GetStatistics()
    {
        int pendingAcks;
        int queueDepth;
        long buffered;
        lock (_gate)
        {
            pendingAcks = PendingAcksLocked;
            queueDepth = _preReady.Count + _outbox.WaitingForWrite;
            buffered = _outbox.PendingBytes;
        }

        return new ConnectionStatistics
        {
            Id = Id,
            RemoteEndPoint = _remoteEndPoint,
            Protocol = _handler?.Protocol,
            SessionId = Session.Id,
            ConnectedSince = _connectedSince,
            EventsIn = Volatile.Read(ref _eventsIn),
            EventsOut = Volatile.Read(ref _eventsOut),
            BytesIn = Volatile.Read(ref _bytesIn),
            BytesOut = Volatile.Read(ref _bytesOut),
            PendingAcks = pendingAcks,
            QueueDepth = queueDepth,
            BufferedBytes = buffered,
        };
    }

    /// <summary>
    /// Client, native protocol: asks the server for a <see cref="ServerStatistics"/> snapshot. Fails with
    /// <see cref="StatisticsUnavailableException"/> when the server does not set
    /// <see cref="UhuraServerOptions.ExposeStatistics"/> (the link goes on), with <see cref="ConnectionLostException"/>
    /// when the link ends first.
    /// </summary>
    /// <exception cref="InvalidOperationException">This is a server's connection.</exception>
    /// <exception cref="NotSupportedException">The link does not speak the native protocol.</exception>
    public async Task<ServerStatistics> GetServerStatisticsAsync(CancellationToken cancellationToken = default)
    {
        if (IsServer)
        {
            throw new InvalidOperationException("Statistics are asked for by a client's link, not by a server's connection.");
        }

        if (Wire != WireProtocol.Native)
        {
            throw new NotSupportedException($"Server statistics are part of the native protocol; this link speaks {Wire}.");
        }

        var id = Interlocked.Increment(ref s_nextStatisticsRequest);
        var reply = new TaskCompletionSource<ServerStatistics>(TaskCreationOptions.RunContinuationsAsynchronously);
        var requests = LazyInitializer.EnsureInitialized(ref _statisticsRequests);
        requests[id] = reply;
        try
        {
            using var lost = Disconnected.Subscribe(info => reply.TrySetException(new ConnectionLostException(StatisticsEvent, info.Error) { ConnectionId = Id }));
            if (!TryEnqueue(InternalMessage(StatisticsEvent, [id])))
            {
                throw new SendAfterCloseException(StatisticsEvent) { ConnectionId = Id };
            }

            return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            requests.TryRemove(id, out _);
        }
    }

    /// <summary>Whether an event read on the native wire is a statistics request or reply, handled here instead of delivered.</summary>
    private static bool IsStatisticsEvent(UhuraEvent e) => string.Equals(e.Name, StatisticsEvent, StringComparison.Ordinal);

    /// <summary>Server: answers a request. Client: completes the request it answers (an unknown number, e.g. after a resend, is ignored).</summary>
    private void HandleStatisticsEvent(UhuraEvent e)
    {
        var args = e.Args;
        var requestId = args.Count > 0 ? args[0] : null;
        if (IsServer)
        {
            var statistics = _server?.ExposedStatistics();
            object?[] reply = statistics is null
                ? [requestId?.DeepClone(), null, "This server does not expose statistics (UhuraServerOptions.ExposeStatistics; uhura serve --stats)."]
                : [requestId?.DeepClone(), Server.StatisticsJson.Write(statistics)];
            TryEnqueue(InternalMessage(StatisticsEvent, reply));
            return;
        }

        if (requestId is not { Type: JTokenType.Integer } || _statisticsRequests is not { } requests
            || !requests.TryGetValue((long)requestId, out var pending))
        {
            return;
        }

        if (args.Count > 1 && args[1] is JObject snapshot)
        {
            try
            {
                pending.TrySetResult(Server.StatisticsJson.Read(snapshot));
            }
            catch (DecodeException ex)
            {
                ex.ConnectionId = Id;
                pending.TrySetException(ex);
            }
        }
        else
        {
            var reason = args.Count > 2 && args[2] is { Type: JTokenType.String } text ? (string)text! : "The server refused the statistics request.";
            pending.TrySetException(new StatisticsUnavailableException(reason) { ConnectionId = Id });
        }
    }

    /// <summary>A protocol event with a reserved name (not validated as an application event's would be), posted.</summary>
    private OutboundMessage InternalMessage(string name, object?[] args)
    {
        var payload = NodeWireCodec.EncodePayload(name, args, _serializer, out var nameEnd);
        return new OutboundMessage(name, payload, awaited: false, nameEnd);
    }

    /// <summary>Notes when the connection was made and who the peer is (for <see cref="GetStatistics"/>).</summary>
    private void InitializeStatistics(Stream stream)
    {
        _connectedSince = _options.TimeProvider.GetUtcNow();
        try
        {
            _remoteEndPoint = Describe(stream);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            _remoteEndPoint = null;
        }
    }

    private static string? Describe(Stream stream) => Transport.SocketFacts.Of(stream)?.RemoteAddress;
}
