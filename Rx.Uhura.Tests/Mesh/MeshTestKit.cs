using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Nodes for a test, closed at its end.</summary>
internal sealed class MeshTestKit : IAsyncDisposable
{
    private readonly List<UhuraNode> _nodes = [];

    public async Task<UhuraNode> StartAsync(string id, UhuraNodeOptions? options = null)
    {
        var node = new UhuraNode((options ?? UhuraNodeOptions.Default) with { NodeId = id });
        _nodes.Add(node);
        await node.ListenAsync("tcp://127.0.0.1:0").For();
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.CloseAsync().WaitAsync(TimeSpan.FromSeconds(15));
        }
    }
}
