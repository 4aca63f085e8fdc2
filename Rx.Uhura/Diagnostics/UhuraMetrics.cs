using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Rx.Uhura.Diagnostics;

/// <summary>
/// The instruments of the <c>Rx.Uhura</c> meter (names in OpenTelemetry style; README, "Metrics and tracing"). Counters
/// are pushed where things happen, with fixed tags and no allocation; what is pending (acks, queued sends, buffered bytes)
/// is observed only when a listener collects, from a registry of live connections and clients, so it costs nothing per
/// event.
/// </summary>
internal static class UhuraMetrics
{
    public static readonly Meter Meter = new(UhuraDiagnostics.MeterName, UhuraDiagnostics.Version);

    public static readonly KeyValuePair<string, object?> ServerSide = new("uhura.side", "server");
    public static readonly KeyValuePair<string, object?> ClientSide = new("uhura.side", "client");

    public static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>(
        "uhura.connections", "{connection}", "Links open now, from the socket's accept or connect until it closes (handshake included).");

    public static readonly Counter<long> ConnectionsOpened = Meter.CreateCounter<long>(
        "uhura.connections.opened", "{connection}", "Links whose handshake completed.");

    public static readonly Counter<long> EventsReceived = Meter.CreateCounter<long>(
        "uhura.events.received", "{event}", "Application events delivered to subscribers (resends already delivered are not counted).");

    public static readonly Counter<long> EventsSent = Meter.CreateCounter<long>(
        "uhura.events.sent", "{event}", "Application events written to a link (a resend after a reconnect counts again).");

    public static readonly Counter<long> BytesReceived = Meter.CreateCounter<long>(
        "uhura.bytes.received", "By", "Bytes read from links.");

    public static readonly Counter<long> BytesSent = Meter.CreateCounter<long>(
        "uhura.bytes.sent", "By", "Bytes written to links.");

    public static readonly Counter<long> Reconnects = Meter.CreateCounter<long>(
        "uhura.client.reconnects", "{reconnect}", "Client links established after an earlier one (a reconnection that succeeded).");

    public static readonly Counter<long> ReconnectAttempts = Meter.CreateCounter<long>(
        "uhura.client.reconnect.attempts", "{attempt}", "Connection attempts a client scheduled after a failure (each backoff wait).");

    public static readonly Counter<long> SessionResumes = Meter.CreateCounter<long>(
        "uhura.session.resumes", "{resume}", "Server: handshakes where the client presented a session id; uhura.outcome = resumed (the store knew it) or not_found (a new session was made).");

    public static readonly Counter<long> StreamResumes = Meter.CreateCounter<long>(
        "uhura.stream.resumes", "{resume}", "Server, native protocol: handshakes where the client asked to resume its event streams; uhura.outcome = resumed or reset (they start again at 1).");

    public static readonly KeyValuePair<string, object?> Resumed = new("uhura.outcome", "resumed");
    public static readonly KeyValuePair<string, object?> NotFound = new("uhura.outcome", "not_found");
    public static readonly KeyValuePair<string, object?> Reset = new("uhura.outcome", "reset");

    private static readonly KeyValuePair<string, object?> NativeTag = new("uhura.protocol", "native");
    private static readonly KeyValuePair<string, object?> NodeUhuraTag = new("uhura.protocol", "node-uhura");
    private static readonly KeyValuePair<string, object?> SocketIpcTag = new("uhura.protocol", "socket-ipc");

    private static readonly ConcurrentDictionary<Connection, byte> LiveConnections = new();
    private static readonly ConcurrentDictionary<UhuraClient, byte> LiveClients = new();

    static UhuraMetrics()
    {
        Meter.CreateObservableUpDownCounter(
            "uhura.acks.pending", () => Observe(static (Connection c) => c.PendingAcks), "{event}",
            "Events written and waiting for the peer's acknowledgement, over the live links.");
        Meter.CreateObservableUpDownCounter(
            "uhura.outbound.queued", ObserveQueued, "{event}",
            "Sends waiting for a link or for its handshake (a client's queue while disconnected included).");
        Meter.CreateObservableUpDownCounter(
            "uhura.outbound.buffered", () => Observe(static (Connection c) => c.BufferedOutboundBytes), "By",
            "Encoded bytes waiting to be written to the socket, over the live links.");
    }

    /// <summary>The <c>uhura.side</c> tag of a link.</summary>
    public static KeyValuePair<string, object?> Side(bool isServer) => isServer ? ServerSide : ClientSide;

    /// <summary>The <c>uhura.protocol</c> tag of a wire.</summary>
    public static KeyValuePair<string, object?> ProtocolTag(WireProtocol wire) => wire switch
    {
        WireProtocol.NodeUhura => NodeUhuraTag,
        WireProtocol.SocketIpc => SocketIpcTag,
        _ => NativeTag,
    };

    /// <summary>The value of the <c>uhura.protocol</c> tag of a wire.</summary>
    public static string ProtocolName(WireProtocol wire) => (string)ProtocolTag(wire).Value!;

    /// <summary>A link started: counted open, and observed by the pending gauges until <see cref="ConnectionEnded"/>.</summary>
    public static void ConnectionStarted(Connection connection)
    {
        LiveConnections.TryAdd(connection, 0);
        Connections.Add(1, Side(connection.IsServer));
    }

    public static void ConnectionEnded(Connection connection)
    {
        if (LiveConnections.TryRemove(connection, out _))
        {
            Connections.Add(-1, Side(connection.IsServer));
        }
    }

    public static void ClientStarted(UhuraClient client) => LiveClients.TryAdd(client, 0);

    public static void ClientEnded(UhuraClient client) => LiveClients.TryRemove(client, out _);

    private static IEnumerable<Measurement<long>> Observe(Func<Connection, long> measure)
    {
        long server = 0, client = 0;
        foreach (var (connection, _) in LiveConnections)
        {
            if (connection.IsServer)
            {
                server += measure(connection);
            }
            else
            {
                client += measure(connection);
            }
        }

        return [new(server, ServerSide), new(client, ClientSide)];
    }

    private static IEnumerable<Measurement<long>> ObserveQueued()
    {
        long server = 0, client = 0;
        foreach (var (connection, _) in LiveConnections)
        {
            if (connection.IsServer)
            {
                server += connection.QueuedBeforeHandshake;
            }
            else
            {
                client += connection.QueuedBeforeHandshake;
            }
        }

        foreach (var (uhuraClient, _) in LiveClients)
        {
            client += uhuraClient.QueuedCount;
        }

        return [new(server, ServerSide), new(client, ClientSide)];
    }
}
