using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Newtonsoft.Json;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura.Benchmarks.Micro;

/// <summary>
/// The hot path of one small event (<c>["ping", 42]</c>): encoding its payload, framing it for each wire, cutting and
/// routing it on the receiving side, and parsing its arguments when an application reads them. Allocation figures
/// come from <see cref="MemoryDiagnoserAttribute"/>.
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private static readonly byte[] IdPrefix = "a1b2c3:"u8.ToArray();
    private readonly JsonSerializer _serializer = JsonSerializer.CreateDefault();
    private readonly object?[] _args = [42];
    private readonly PooledBufferWriter _output = new();
    private byte[] _payload = [];
    private byte[] _argsJson = [];
    private ReadOnlySequence<byte> _nodeElement;
    private ReadOnlySequence<byte> _nativeFrame;
    private JsonArrayFramer _framer = new(UhuraDefaults.MaxMessageSize);
    private readonly Utf8NameCache _names = new();
    private NativeFrameReader _nativeReader = null!;

    [GlobalSetup]
    public void Setup()
    {
        _payload = NodeWireCodec.EncodePayload("ping", _args, _serializer, out var nameEnd);
        _argsJson = [(byte)'[', .. _payload.AsSpan(nameEnd + 1)]; // drop `"ping",` keep the rest of the array

        var node = new PooledBufferWriter();
        node.Write(NodeWireCodec.Separator);
        NodeWireCodec.WriteObject(node, _payload, IdPrefix, 42);
        _nodeElement = new ReadOnlySequence<byte>(node.ToArray());

        // Prime the framer past the array's opening bracket and first element, so every later call reads "\n,\n{...}".
        var first = new PooledBufferWriter();
        first.Write(NodeWireCodec.OpenArray);
        NodeWireCodec.WriteObject(first, _payload, IdPrefix, 1);
        var primed = new ReadOnlySequence<byte>(first.ToArray());
        _framer = new JsonArrayFramer(UhuraDefaults.MaxMessageSize);
        SequencePosition consumed = primed.Start, examined = primed.Start;
        if (!_framer.TryParseMessage(primed, ref consumed, ref examined, out _))
        {
            throw new InvalidOperationException("the framer did not cut the first element");
        }

        var native = new PooledBufferWriter();
        NativeFrameWriter.WriteEvent(native, 42, "ping", _argsJson);
        _nativeFrame = new ReadOnlySequence<byte>(native.ToArray());
        _nativeReader = new NativeFrameReader(UhuraDefaults.MaxMessageSize, _names);
    }

    /// <summary>Serializes <c>["ping", 42]</c> (what every Send does once).</summary>
    [Benchmark]
    public int EncodePayload() => NodeWireCodec.EncodePayload("ping", _args, _serializer).Length;

    /// <summary>Frames an encoded payload as a Node-wire object element <c>{"args":[...],"id":"..."}</c>.</summary>
    [Benchmark]
    public int FrameNodeWire()
    {
        _output.Reset();
        NodeWireCodec.WriteObject(_output, _payload, IdPrefix, 42);
        return _output.WrittenCount;
    }

    /// <summary>Frames a native Event frame.</summary>
    [Benchmark]
    public int FrameNative()
    {
        _output.Reset();
        NativeFrameWriter.WriteEvent(_output, 42, "ping", _argsJson);
        return _output.WrittenCount;
    }

    /// <summary>
    /// Cuts one Node-wire element out of the stream and routes it as the read loop does: a scan for the name and id,
    /// the element's bytes kept for the arguments (no JToken).
    /// </summary>
    [Benchmark]
    public int DecodeNodeWire()
    {
        SequencePosition consumed = _nodeElement.Start, examined = _nodeElement.Start;
        if (!_framer.TryParseMessage(_nodeElement, ref consumed, ref examined, out var element))
        {
            throw new InvalidOperationException("no element");
        }

        var scan = NodeElementScanner.Scan(element.ToArray(), UhuraDefaults.MaxJsonDepth, _names);
        return scan.ArrayLength;
    }

    /// <summary>Reads and decodes one native Event frame and validates its arguments, as the read loop does.</summary>
    [Benchmark]
    public int DecodeNative()
    {
        var consumed = _nativeFrame.Start;
        var examined = consumed;
        if (!_nativeReader.TryParseMessage(_nativeFrame, ref consumed, ref examined, out var frame))
        {
            throw new InvalidOperationException("no frame");
        }

        JsonArgs.ValidateArray(frame.Args.Span, UhuraDefaults.MaxJsonDepth, "arguments");
        return frame.Args.Length;
    }

    /// <summary>What reading <c>UhuraEvent.Args</c> costs the first time: the arguments parsed into JTokens.</summary>
    [Benchmark]
    public int MaterializeArgs() => JsonArgs.Parse(_argsJson, UhuraDefaults.MaxJsonDepth).Length;

    internal static string Describe() => Encoding.UTF8.GetString(NodeWireCodec.EncodePayload("ping", [42], JsonSerializer.CreateDefault()));
}
