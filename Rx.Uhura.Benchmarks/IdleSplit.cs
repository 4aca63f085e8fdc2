using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Rx.Uhura.Benchmarks;

/// <summary>
/// idle-memory, one side at a time: the server runs in this process and the clients in a child process (this program
/// again), so each side's memory per idle connection is measured on its own, instead of both ends together as the
/// comparison run does.
/// </summary>
internal static class IdleSplit
{
    private const int ConnectParallelism = 32;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = 10_000;
        var protocol = WireProtocol.Native;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connections" when i + 1 < args.Length:
                    count = int.Parse(args[++i], Inv);
                    break;
                case "--protocol" when i + 1 < args.Length:
                    protocol = args[++i] == "uhura" ? WireProtocol.NodeUhura : WireProtocol.Native;
                    break;
                default:
                    await Console.Error.WriteLineAsync("usage: Rx.Uhura.Benchmarks idle-split [--connections N] [--protocol native|uhura]");
                    return 2;
            }
        }

        var connections = new ConcurrentQueue<Connection>();
        await using var server = new UhuraServer();
        server.Connections.Subscribe(connections.Enqueue);
        await server.ListenAsync("tcp://127.0.0.1:0");
        var before = Memory();
        var start = new ProcessStartInfo(Environment.ProcessPath!, ["idle-split-clients", server.Uri!, count.ToString(Inv), protocol.ToString()])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using var child = Process.Start(start)!;
        var clientLine = await child.StandardOutput.ReadLineAsync();
        while (connections.Count < count)
        {
            await Task.Delay(10);
        }

        var after = Memory();
        Console.WriteLine($"idle-memory, {protocol}, {count:N0} connections, server and clients in two processes, {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC");
        Console.WriteLine($"  server side: {Format(before, after, count)}");
        Console.WriteLine($"  client side: {clientLine}");
        child.StandardInput.Close();
        await child.WaitForExitAsync();
        return 0;
    }

    /// <summary>The child: connects the clients, reports its own memory per connection, holds them until stdin closes.</summary>
    public static async Task<int> ClientsAsync(string[] args)
    {
        var uri = args[0];
        var count = int.Parse(args[1], Inv);
        var options = new UhuraClientOptions { Protocol = Enum.Parse<WireProtocol>(args[2]) };
        await using var first = await UhuraClient.ConnectAsync(uri, options); // warms up the code paths, not counted
        var before = Memory();
        var clients = new ConcurrentBag<UhuraClient>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count - 1), new ParallelOptions { MaxDegreeOfParallelism = ConnectParallelism }, async (_, ct) =>
        {
            var client = UhuraClient.Connect(uri, options);
            clients.Add(client);
            await client.WhenConnectedAsync(ct);
        });
        var after = Memory();
        Console.WriteLine(Format(before, after, count - 1));
        await Console.In.ReadToEndAsync();
        GC.KeepAlive(clients);
        return 0;
    }

    private static (long Managed, long WorkingSet) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        return (managed, process.WorkingSet64);
    }

    private static string Format((long Managed, long WorkingSet) before, (long Managed, long WorkingSet) after, int count)
        => string.Create(Inv, $"managed {(after.Managed - before.Managed) / (double)count:N0} B/conn, working set {(after.WorkingSet - before.WorkingSet) / (double)count:N0} B/conn");
}
