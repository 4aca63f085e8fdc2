using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Mesh;

/// <summary>An event emitted on the event bus by some node of the graph (verbose's <c>node.on(event, ...)</c>).</summary>
public sealed class BusEvent
{
    private readonly JsonSerializer _serializer;

    internal BusEvent(string originId, string name, JArray args, IReadOnlyList<string> path, JsonSerializer serializer)
    {
        OriginId = originId;
        Name = name;
        Args = args;
        Path = path;
        _serializer = serializer;
    }

    /// <summary>The id of the node that emitted the event.</summary>
    public string OriginId { get; }

    /// <summary>The event name.</summary>
    public string Name { get; }

    /// <summary>The arguments, as given to <c>Emit</c>.</summary>
    public JArray Args { get; }

    /// <summary>The ids of the nodes the event passed through, the origin first (the last is the peer it came from).</summary>
    public IReadOnlyList<string> Path { get; }

    /// <summary>Argument <paramref name="index"/> converted to <typeparamref name="T"/> with the node's serializer settings.</summary>
    /// <exception cref="ArgumentOutOfRangeException">There is no such argument.</exception>
    public T? Arg<T>(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Args.Count);
        return Args[index].ToObject<T>(_serializer);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{OriginId} {Name}{Args.ToString(Formatting.None)}";
}
