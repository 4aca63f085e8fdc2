using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Server;

/// <summary>
/// The wire form of a <see cref="ServerStatistics"/> (the reply to a <c>_stats</c> request): camelCase names, times as
/// Unix milliseconds (no date parsing anywhere), the protocol as its <see cref="WireProtocol"/> name.
/// </summary>
internal static class StatisticsJson
{
    public static JObject Write(ServerStatistics statistics) => new()
    {
        ["timestamp"] = statistics.Timestamp.ToUnixTimeMilliseconds(),
        ["startedAt"] = statistics.StartedAt.ToUnixTimeMilliseconds(),
        ["connections"] = new JArray(statistics.Connections.Select(c => new JObject
        {
            ["id"] = c.Id,
            ["remote"] = c.RemoteEndPoint,
            ["protocol"] = c.Protocol?.ToString(),
            ["session"] = c.SessionId,
            ["connectedSince"] = c.ConnectedSince.ToUnixTimeMilliseconds(),
            ["eventsIn"] = c.EventsIn,
            ["eventsOut"] = c.EventsOut,
            ["bytesIn"] = c.BytesIn,
            ["bytesOut"] = c.BytesOut,
            ["pendingAcks"] = c.PendingAcks,
            ["queueDepth"] = c.QueueDepth,
            ["bufferedBytes"] = c.BufferedBytes,
        })),
    };

    /// <summary>Reads the reply; <see cref="DecodeException"/> when it has the wrong shape.</summary>
    public static ServerStatistics Read(JObject json)
    {
        try
        {
            return new ServerStatistics
            {
                Timestamp = Time(json["timestamp"]),
                StartedAt = Time(json["startedAt"]),
                Connections = [.. ((JArray?)json["connections"] ?? []).Select(token =>
                {
                    var c = (JObject)token;
                    return new ConnectionStatistics
                    {
                        Id = (string?)c["id"] ?? throw new FormatException("a connection has no id"),
                        RemoteEndPoint = (string?)c["remote"],
                        Protocol = (string?)c["protocol"] is { } wire ? Enum.Parse<WireProtocol>(wire) : null,
                        SessionId = (string?)c["session"],
                        ConnectedSince = Time(c["connectedSince"]),
                        EventsIn = (long?)c["eventsIn"] ?? 0,
                        EventsOut = (long?)c["eventsOut"] ?? 0,
                        BytesIn = (long?)c["bytesIn"] ?? 0,
                        BytesOut = (long?)c["bytesOut"] ?? 0,
                        PendingAcks = (int?)c["pendingAcks"] ?? 0,
                        QueueDepth = (int?)c["queueDepth"] ?? 0,
                        BufferedBytes = (long?)c["bufferedBytes"] ?? 0,
                    };
                })],
            };
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException or ArgumentException or OverflowException)
        {
            throw new DecodeException($"The server's statistics reply is malformed: {ex.Message}", Truncate(json.ToString(Newtonsoft.Json.Formatting.None)), ex);
        }
    }

    private static DateTimeOffset Time(JToken? token)
        => DateTimeOffset.FromUnixTimeMilliseconds((long?)token ?? throw new FormatException("a time is missing"));

    private static string Truncate(string text) => text.Length <= 200 ? text : text[..200];
}
