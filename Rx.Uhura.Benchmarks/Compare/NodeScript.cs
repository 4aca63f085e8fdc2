namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// A Node contender: its script in the repository's <c>bench/</c> folder (see bench/README.md), the npm packages the
/// script needs, and caps on the counts of a contender too slow for the run's sizes (each capped result says so in its
/// note).
/// </summary>
/// <param name="Contender">The contender's name in the table.</param>
/// <param name="FileName">The script, relative to <c>bench/</c>.</param>
/// <param name="Packages">npm packages that must be installed in <c>bench/node_modules</c>.</param>
public sealed record NodeScript(string Contender, string FileName, IReadOnlyList<string> Packages)
{
    /// <summary>Socket.IO 4 server and client, websocket transport.</summary>
    public static NodeScript SocketIo { get; } = new("socket.io", "socketio.js", ["socket.io", "socket.io-client"]);

    /// <summary>
    /// The original npm <c>uhura@0.1.2</c>. Its throughput is capped because the package slows down with the number of
    /// sends awaiting their ack (BENCHMARKS.md: a count small enough to finish); its round trips because each one
    /// waits about 88 ms on Nagle's algorithm and the peer's delayed ACK (the package never sets TCP_NODELAY), and the
    /// script also stops measuring after a time budget.
    /// </summary>
    public static NodeScript NodeUhura { get; } = new("node-uhura", "node-uhura.js", ["uhura"])
    {
        Throughput = new Cap(10_000, "capped: the package slows down with the number of sends awaiting their ack"),
        RoundTrips = new Cap(100, "capped: each round trip waits ~88 ms on Nagle's algorithm and delayed ACK, the package never sets TCP_NODELAY"),
        RttBudgetSeconds = 20,
    };

    /// <summary>Every Node contender, in the table's order.</summary>
    public static IReadOnlyList<NodeScript> All { get; } = [SocketIo, NodeUhura];

    /// <summary>The most events one throughput run sends; null: the run's size.</summary>
    public Cap? Throughput { get; init; }

    /// <summary>The most round trips one rtt run measures; null: the run's size.</summary>
    public Cap? RoundTrips { get; init; }

    /// <summary>An rtt run stops measuring after this many seconds (<c>--budget S</c>); null: no budget.</summary>
    public int? RttBudgetSeconds { get; init; }

    /// <summary>A cap on a count, and why (shown in the note of every result it shortened).</summary>
    public sealed record Cap(int Max, string Why);
}
