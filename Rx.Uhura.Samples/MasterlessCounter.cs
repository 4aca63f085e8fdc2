using System.Reactive.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;

namespace Rx.Uhura.Samples;

/// <summary>
/// The counter example of the Node package <c>masterless</c> (its README's API section) with two Rx.Uhura nodes on
/// the masterless wire, in one process: when left listens, right connects to it; when right is connected it sends
/// <c>{type: 'counter', total: 0}</c>; each node answers a counter packet with the total plus one, printing
/// <c>counter at N</c> every 100. Unlike the example, which counts forever, the run stops at <see cref="Last"/>.
/// </summary>
internal static class MasterlessCounter
{
    /// <summary>The sample's command-line argument.</summary>
    public const string Name = "masterless";

    /// <summary>The total at which the ping-pong stops.</summary>
    private const int Last = 500;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the ping-pong, printing to <paramref name="output"/>; returns the exit code (0 when it reached <see cref="Last"/>).</summary>
    public static async Task<int> RunAsync(TextWriter output)
    {
        var options = UhuraNodeOptions.Default with { Protocol = MeshProtocol.Masterless };
        await using var left = new UhuraNode(options with { NodeId = "e4663c9c3f9a89112afc48389a951e09" });
        await using var right = new UhuraNode(options with { NodeId = "b073a8ee09e1daca57e9d54a5efe5684" });

        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // left.on('listening', info => right.connect(info)): a masterless node tells its own address in the handshake,
        // so right listens too (a Node masterless server always does).
        using var connect = left.Listening
            .SelectMany(info => Observable.FromAsync(token => right.ConnectAsync(info, cancellationToken: token)))
            .Subscribe(_ => { }, error => finished.TrySetException(error));

        // right.on('connect', id => right.send(id, {type: 'counter', total: 0}))
        using var start = right.PeerConnected.Subscribe(id => right.Send(id, new { type = "counter", total = 0 }));

        // left.on('message', onmessage); right.on('message', onmessage)
        using var leftMessages = left.Messages.Subscribe(m => OnMessage(left, m));
        using var rightMessages = right.Messages.Subscribe(m => OnMessage(right, m));

        void OnMessage(UhuraNode self, MeshMessage message)
        {
            if (message.Packet is JObject packet && (string?)packet["type"] == "counter" && packet["total"] is { Type: JTokenType.Integer } count)
            {
                var total = (int)count;
                if (total % 100 == 0)
                {
                    output.WriteLine($"counter at {total}");
                }

                if (total >= Last)
                {
                    finished.TrySetResult();
                    return;
                }

                self.Send(message.SenderId, new { type = "counter", total = total + 1 });
            }
            else
            {
                output.WriteLine($"unknown packet {message.Packet.ToString(Formatting.None)}");
            }
        }

        try
        {
            await right.ListenAsync("tcp://127.0.0.1:0");
            await left.ListenAsync("tcp://127.0.0.1:0");
            await finished.Task.WaitAsync(Timeout);
            return 0;
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or PeerRefusedException or InvalidOperationException)
        {
            Console.Error.WriteLine("the counter failed: " + ex.Message);
            return 1;
        }
    }
}
