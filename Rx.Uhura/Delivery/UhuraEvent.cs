using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

/// <summary>
/// One event received from the peer: a name and its arguments, as the sender passed them to <c>send(name, ...args)</c>.
/// </summary>
public sealed class UhuraEvent
{
    private static readonly JToken[] NoArgs = [];

    private readonly byte[]? _rawArgs;
    private readonly int _rawStart;
    private readonly int _rawLength;
    private readonly int _skip;
    private readonly int _maxDepth;
    private readonly long _sequence;
    private IReadOnlyList<JToken>? _args;
    private string? _messageId;

    /// <summary>Creates an event.</summary>
    /// <param name="name">The event name.</param>
    /// <param name="args">The arguments, in order.</param>
    /// <param name="messageId">The wire message id, where the protocol carries one.</param>
    /// <param name="connection">The connection the event arrived on, if any.</param>
    public UhuraEvent(string name, IReadOnlyList<JToken>? args = null, string? messageId = null, Connection? connection = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        _args = args ?? NoArgs;
        _messageId = messageId;
        Connection = connection;
    }

    /// <summary>
    /// An event received on the native protocol: the arguments stay as the validated UTF-8 JSON array they arrived as
    /// and become <see cref="JToken"/>s only when <see cref="Args"/> is first read, so routing and filtering cost no parse.
    /// </summary>
    internal UhuraEvent(string name, byte[] rawArgs, int maxDepth, long sequence, Connection connection)
        : this(name, rawArgs, 0, rawArgs.Length, 0, maxDepth, sequence, null, connection)
    {
    }

    /// <summary>An event whose arguments are the validated JSON array at <paramref name="start"/>, less its first <paramref name="skip"/> elements (the Node wire's <c>[name, ...args]</c>).</summary>
    internal UhuraEvent(string name, byte[] raw, int start, int length, int skip, int maxDepth, long sequence, string? messageId, Connection connection)
    {
        Name = name;
        _rawArgs = raw;
        _rawStart = start;
        _rawLength = length;
        _skip = skip;
        _maxDepth = maxDepth;
        _sequence = sequence;
        _messageId = messageId;
        Connection = connection;
    }

    /// <summary>The event name.</summary>
    public string Name { get; }

    /// <summary>The arguments, in the order they were sent. Never null; empty when the event had none.</summary>
    /// <remarks>
    /// Events from the native protocol are parsed into <see cref="JToken"/>s the first time this property (or
    /// <see cref="Arg{T}"/>) is read; the JSON was validated on arrival, so reading it does not fail.
    /// </remarks>
    public IReadOnlyList<JToken> Args => _args ?? MaterializeArgs();

    /// <summary>
    /// The message id the sender attached (Node uhura object form with acks on), the event's sequence number on the
    /// native protocol, or <see langword="null"/>.
    /// </summary>
    public string? MessageId => _messageId ?? (_sequence > 0 ? _messageId = _sequence.ToString(System.Globalization.CultureInfo.InvariantCulture) : null);

    /// <summary>The connection the event arrived on, so a handler can answer on it; <see langword="null"/> for events built by hand.</summary>
    public Connection? Connection { get; }

    /// <summary>Reads argument <paramref name="index"/> as <typeparamref name="T"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The event has no argument at <paramref name="index"/>.</exception>
    /// <exception cref="FormatException">The argument cannot be converted to <typeparamref name="T"/>.</exception>
    public T Arg<T>(int index)
    {
        if ((uint)index >= (uint)Args.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Event '{Name}' has {Args.Count} argument(s).");
        }

        try
        {
            return Args[index].ToObject<T>()!;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidCastException or Newtonsoft.Json.JsonException or OverflowException)
        {
            throw new FormatException($"Argument {index} of event '{Name}' ({Args[index].Type}) cannot be read as {typeof(T).Name}.", ex);
        }
    }

    /// <summary>Reads argument <paramref name="index"/> as <typeparamref name="T"/>, or returns <paramref name="fallback"/> when it is missing or null.</summary>
    public T? ArgOrDefault<T>(int index, T? fallback = default)
    {
        if ((uint)index >= (uint)Args.Count || Args[index].Type == JTokenType.Null)
        {
            return fallback;
        }

        return Arg<T>(index);
    }

    private IReadOnlyList<JToken> MaterializeArgs()
    {
        var parsed = JsonArgs.Parse(_rawArgs!, _rawStart, _rawLength, _skip, _maxDepth);
        return Interlocked.CompareExchange(ref _args, parsed, null) ?? parsed;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}({string.Join(", ", Args.Select(a => a.ToString(Newtonsoft.Json.Formatting.None)))})";
}
