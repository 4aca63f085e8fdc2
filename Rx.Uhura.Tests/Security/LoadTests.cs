using System.Diagnostics;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Tests.Core;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Security;

/// <summary>Many concurrent connections to one server on this 2-core machine: all served; latency and memory reported.</summary>
public sealed class LoadTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task Two_thousand_concurrent_connections_each_exchanging_events_are_all_served(WireProtocol wire)
    {
        const int clients = 2000;
        const int roundTrips = 5;
        await using var server = new UhuraServer();
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Post("pong", e.Args[0])));
        await server.ListenAsync("tcp://127.0.0.1:0");

        GC.Collect();
        var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var connect = Stopwatch.StartNew();
        var all = new UhuraClient[clients];
        try
        {
            for (var i = 0; i < clients; i += 100)
            {
                var batch = Enumerable.Range(i, Math.Min(100, clients - i))
                    .Select(async n => all[n] = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { Protocol = wire }));
                await Task.WhenAll(batch).WaitAsync(TimeSpan.FromSeconds(60));
            }

            connect.Stop();
            Assert.Equal(clients, server.ActiveConnections.Count);
            GC.Collect();
            var managedConnected = GC.GetTotalMemory(forceFullCollection: true);

            // Every client does round trips at the same time; each is timed from send to answer.
            var latencies = new double[clients * roundTrips];
            var exchange = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async n =>
            {
                var client = all[n];
                for (var r = 0; r < roundTrips; r++)
                {
                    var answer = client.Event("pong").Where(e => e.Arg<int>(0) == r).FirstAsync().ToTask();
                    var started = Stopwatch.GetTimestamp();
                    client.Post("ping", r);
                    await answer;
                    latencies[(n * roundTrips) + r] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                }
            })).WaitAsync(TimeSpan.FromSeconds(120));
            exchange.Stop();

            Array.Sort(latencies);
            double Percentile(double p) => latencies[(int)Math.Min(latencies.Length - 1, Math.Ceiling(p * latencies.Length) - 1)];
            var perConnection = (managedConnected - managedBefore) / (double)clients;
            output.WriteLine($"{wire}: {clients} connections in {connect.Elapsed.TotalSeconds:0.0} s; {clients * roundTrips} round trips in {exchange.Elapsed.TotalSeconds:0.00} s; " +
                $"latency p50 {Percentile(0.50):0.0} ms, p99 {Percentile(0.99):0.0} ms, max {latencies[^1]:0.0} ms; " +
                $"managed memory {perConnection / 1024:0.0} KiB per connection (server and client, one process), {GC.GetTotalMemory(false) / (1024 * 1024):0} MiB in all");
            Assert.All(latencies, l => Assert.True(l > 0));
        }
        finally
        {
            await Task.WhenAll(all.Where(c => c is not null).Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
