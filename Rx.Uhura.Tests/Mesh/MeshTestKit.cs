using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Nodes for a test, closed at its end.</summary>
internal sealed class MeshTestKit : IAsyncDisposable
{
    private readonly List<UhuraNode> _nodes = [];

    public async Task<UhuraNode> StartAsync(string id, UhuraNodeOptions? options = null, string listenUri = "tcp://127.0.0.1:0")
    {
        var node = new UhuraNode((options ?? UhuraNodeOptions.Default) with { NodeId = id });
        _nodes.Add(node);
        await node.ListenAsync(listenUri).For();
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        var closing = _nodes.Select(node => node.CloseAsync()).ToArray();
        var all = Task.WhenAll(closing);
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(15))) != all)
        {
            var stuck = _nodes.Where((_, i) => !closing[i].IsCompleted).Select(n => n.Id + " " + n.DebugLinks());
            throw new TimeoutException("Nodes did not close: " + string.Join("; ", stuck));
        }

        await all;
    }
}
