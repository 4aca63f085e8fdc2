using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Cli;

/// <summary>
/// Where the commands report: records (JSON objects with a <c>type</c>), each handed whole to one
/// <see cref="IRecordRenderer"/> (JSON lines for machines, <see cref="HumanRenderer"/> for a person on a terminal),
/// safe to call from any thread. The commands build the same records whichever renderer is in use.
/// </summary>
internal sealed class JsonLines
{
    private static JsonLines? s_stdout;
    private readonly IRecordRenderer _renderer;
    private readonly object _gate = new();

    public JsonLines(TextWriter writer)
        : this(new JsonRenderer(writer))
    {
    }

    public JsonLines(IRecordRenderer renderer)
    {
        _renderer = renderer;
    }

    /// <summary>
    /// Standard output as <see cref="Program"/> chose it (<see cref="OutputMode"/>): JSON lines by default (UTF-8 without
    /// BOM, "\n" line ends, flushed per line), or the human rendering on a terminal.
    /// </summary>
    public static JsonLines Stdout
    {
        get => LazyInitializer.EnsureInitialized(ref s_stdout, static () => new JsonLines(JsonRenderer.Stdout()));
        set => Volatile.Write(ref s_stdout, value);
    }

    /// <summary>Whether records are rendered for a person (then progress bars and live views may be drawn too).</summary>
    public bool IsHuman => _renderer is HumanRenderer;

    /// <summary>The renderer's console, in human mode: for progress bars and live views on the same output.</summary>
    public Spectre.Console.IAnsiConsole? Console => (_renderer as HumanRenderer)?.Console;

    /// <summary>Writes one record: <c>{"type":TYPE, ...fields}</c>.</summary>
    public void Write(string type, params (string Name, JToken? Value)[] fields) => Write(Line(type, fields));

    /// <summary>One record, not written yet: <c>{"type":TYPE, ...fields}</c>.</summary>
    public static JObject Line(string type, params (string Name, JToken? Value)[] fields)
    {
        var line = new JObject { ["type"] = type };
        foreach (var (name, value) in fields)
        {
            line[name] = value ?? JValue.CreateNull();
        }

        return line;
    }

    /// <summary>An <c>event</c> record: <c>{"type":"event","conn":ID,"event":NAME,"args":[...]}</c>.</summary>
    public void Event(UhuraEvent e) => Write(
        "event",
        ("conn", e.Connection?.Id),
        ("event", e.Name),
        ("args", new JArray(e.Args.Select(a => a.DeepClone()))));

    /// <summary>Renders a whole record (one line in JSON mode) and flushes it.</summary>
    public void Write(JObject line)
    {
        lock (_gate)
        {
            _renderer.Render(line);
        }
    }
}

/// <summary>Turns one record into output; called under the output's lock, one record at a time.</summary>
internal interface IRecordRenderer
{
    /// <summary>Writes the record and flushes it; never throws for a reader that went away.</summary>
    void Render(JObject record);
}

/// <summary>The machine-readable rendering (CLI.md): one JSON object per line, flushed at once.</summary>
internal sealed class JsonRenderer(TextWriter writer) : IRecordRenderer
{
    private bool _broken;

    /// <summary>Standard output, UTF-8 without BOM, "\n" line ends.</summary>
    public static JsonRenderer Stdout() => new(new StreamWriter(System.Console.OpenStandardOutput(), new UTF8Encoding(false), 4096) { AutoFlush = false, NewLine = "\n" });

    public void Render(JObject record)
    {
        if (_broken)
        {
            return;
        }

        var text = record.ToString(Formatting.None);
        try
        {
            writer.Write(text);
            writer.Write('\n');
            writer.Flush();
        }
        catch (IOException)
        {
            // The reader went away (broken pipe): nothing more can be reported on stdout.
            _broken = true;
        }
    }
}
