using System.Reactive.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

public class DeduplicationTests
{
    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Two_nodes_that_dial_each_other_at_the_same_moment_keep_exactly_one_connection(MeshProtocol protocol)
    {
        for (var round = 0; round < 5; round++)
        {
            await using var kit = new MeshTestKit();
            var options = UhuraNodeOptions.Default with { Protocol = protocol };
            var left = await kit.StartAsync("left", options);
            var right = await kit.StartAsync("right", options);
            var connects = new List<string>();
            using var l = left.PeerConnected.Subscribe(id => { lock (connects) { connects.Add("left<-" + id); } });
            using var r = right.PeerConnected.Subscribe(id => { lock (connects) { connects.Add("right<-" + id); } });

            var leftConnected = Wait.First(left.PeerConnected);
            var rightConnected = Wait.First(right.PeerConnected);
            var both = await Task.WhenAll(left.ConnectAsync(right.Info!), right.ConnectAsync(left.Info!)).For();
            Assert.Equal(["right", "left"], both);
            Assert.Equal("right", await leftConnected);
            Assert.Equal("left", await rightConnected);

            await AssertLinksSettleAsync([left, right], expectedPerNode: 1);
            lock (connects)
            {
                Assert.Equal(["left<-right", "right<-left"], connects.Order());
            }

            var got = Wait.First(right.Messages);
            Assert.True(left.Send("right", new { round }));
            Assert.Equal(round, (await got).Packet["round"]!.ToObject<int>());
        }
    }

    [Fact]
    public async Task A_full_mesh_of_8_nodes_dialling_every_pair_both_ways_at_once_ends_with_one_connection_per_pair()
    {
        const int n = 8;
        await using var kit = new MeshTestKit();
        var nodes = new UhuraNode[n];
        for (var i = 0; i < n; i++)
        {
            nodes[i] = await kit.StartAsync($"node-{i}");
        }

        var dials = new List<Task<string>>();
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++)
            {
                if (i != j)
                {
                    dials.Add(nodes[i].ConnectAsync(nodes[j].Info!));
                }
            }
        }

        await Task.WhenAll(dials).WaitAsync(TimeSpan.FromSeconds(30));
        foreach (var node in nodes)
        {
            foreach (var other in nodes.Where(o => o != node))
            {
                await node.WhenConnectedAsync(other.Id).For();
            }
        }

        var total = await AssertLinksSettleAsync(nodes, expectedPerNode: n - 1);
        Assert.Equal(n * (n - 1), total); // each of the N·(N−1)/2 connections counted at both ends

        // Every pair can talk.
        var expected = n * (n - 1);
        var received = 0;
        var all = new TaskCompletionSource();
        var subscriptions = nodes.Select(node => node.Messages.Subscribe(_ =>
        {
            if (Interlocked.Increment(ref received) == expected)
            {
                all.TrySetResult();
            }
        })).ToList();
        foreach (var node in nodes)
        {
            Assert.Equal(n - 1, node.Send(nodes.Where(o => o != node).Select(o => o.Id), new { from = node.Id }));
        }

        await all.Task.For();
        subscriptions.ForEach(s => s.Dispose());
    }

    /// <summary>Waits until each node has <paramref name="expectedPerNode"/> open sockets (losers of de-duplication close asynchronously).</summary>
    private static async Task<int> AssertLinksSettleAsync(UhuraNode[] nodes, int expectedPerNode)
    {
        foreach (var node in nodes)
        {
            await Wait.First(node.OpenLinks, count => count == expectedPerNode);
            Assert.Equal(expectedPerNode, node.Peers.Count);
        }

        return nodes.Length * expectedPerNode;
    }
}
