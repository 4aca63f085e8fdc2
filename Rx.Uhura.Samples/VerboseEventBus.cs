using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json;
using Rx.Uhura.Mesh;

namespace Rx.Uhura.Samples;

/// <summary>
/// The README of the Node package <c>verbose</c> (a distributed event bus) with two Rx.Uhura nodes on the native mesh
/// wire, in one process: create the nodes, make one listen, connect the other to it, emit <c>'event', 'a', 1</c> on
/// one, receive it on the other and print it, end both nodes.
/// </summary>
internal static class VerboseEventBus
{
    /// <summary>The sample's command-line argument.</summary>
    public const string Name = "verbose";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the example, printing to <paramref name="output"/>; returns the exit code (0 when the event arrived).</summary>
    public static async Task<int> RunAsync(TextWriter output)
    {
        // var node = verbose({node_id: 'NODE-ID-000001'});
        await using var node = new UhuraNode(new UhuraNodeOptions { NodeId = "NODE-ID-000001" });
        await using var other = new UhuraNode(new UhuraNodeOptions { NodeId = "NODE-ID-000002" });

        // other.on('event', function() { console.log('got event:', arguments); });
        var received = other.Event("event")
            .Do(e => output.WriteLine($"got event: {e.Args.ToString(Formatting.None)} from {e.OriginId}"))
            .FirstAsync()
            .ToTask();

        try
        {
            // node.listen(port);
            var info = await node.ListenAsync("tcp://127.0.0.1:0");
            output.WriteLine($"{node.Id} listening on {info}");

            // other.connect(port[, host]);
            var peer = await other.ConnectAsync(info).WaitAsync(Timeout);
            await node.WhenConnectedAsync(other.Id).WaitAsync(Timeout);
            output.WriteLine($"{other.Id} connected to {peer}");

            // node.emit('event', 'a', 1);
            node.Emit("event", "a", 1);
            await received.WaitAsync(Timeout);
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or PeerRefusedException)
        {
            Console.Error.WriteLine("the event bus example failed: " + ex.Message);
            return 1;
        }

        // node.end();
        await other.CloseAsync();
        await node.CloseAsync();
        output.WriteLine("nodes ended");
        return 0;
    }
}
