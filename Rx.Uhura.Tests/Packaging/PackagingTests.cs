using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using Rx.Uhura.Tests.Cli;

namespace Rx.Uhura.Tests.Packaging;

/// <summary>
/// <c>dotnet pack --no-build</c> of the library and the tool, as built for these tests (a few seconds): each package
/// carries the shared metadata, the README, the LICENSE and the XML docs, and the tool its settings.
/// </summary>
public sealed class PackagingTests : IDisposable
{
    private static readonly TimeSpan PackTimeout = TimeSpan.FromMinutes(3);
    private readonly string _output = Path.Combine(Path.GetTempPath(), "uhura-pack-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_output))
        {
            Directory.Delete(_output, recursive: true);
        }
    }

    [Fact]
    public async Task The_library_and_the_tool_pack_with_readme_license_xml_docs_and_the_tool_settings()
    {
        var library = await PackAsync("Rx.Uhura", "Rx.Uhura");
        Assert.Contains("README.md", library.Entries);
        Assert.Contains("LICENSE", library.Entries);
        Assert.Contains("lib/net10.0/Rx.Uhura.dll", library.Entries);
        Assert.Contains("lib/net10.0/Rx.Uhura.xml", library.Entries);
        AssertMetadata(library.Nuspec, "Rx.Uhura");

        var tool = await PackAsync("Rx.Uhura.Cli", "Rx.Uhura.Cli");
        Assert.Contains("README.md", tool.Entries);
        Assert.Contains("tools/net10.0/any/uhura.dll", tool.Entries);
        Assert.Contains("tools/net10.0/any/Rx.Uhura.xml", tool.Entries);
        Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", tool.Entries);
        AssertMetadata(tool.Nuspec, "Rx.Uhura.Cli");
        var ns = tool.Nuspec.Root!.Name.Namespace;
        Assert.Contains(tool.Nuspec.Descendants(ns + "packageType"), p => (string?)p.Attribute("name") == "DotnetTool");
        var settings = XDocument.Parse(tool.Read("tools/net10.0/any/DotnetToolSettings.xml"));
        var command = Assert.Single(settings.Descendants("Command"));
        Assert.Equal("uhura", (string?)command.Attribute("Name"));
        Assert.Equal("uhura.dll", (string?)command.Attribute("EntryPoint"));
    }

    private static void AssertMetadata(XDocument nuspec, string id)
    {
        var ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        string? Value(string name) => (string?)metadata.Element(ns + name);
        Assert.Equal(id, Value("id"));
        Assert.Equal("Rx.Uhura contributors", Value("authors"));
        Assert.Equal("MIT", Value("license"));
        Assert.Equal("README.md", Value("readme"));
        Assert.Equal("https://github.com/rx-uhura/Rx.Uhura", Value("projectUrl"));
        Assert.False(string.IsNullOrWhiteSpace(Value("description")));
        Assert.Contains("rx", Value("tags")!.Split(' '));
        Assert.Matches(@"^\d+\.\d+\.\d+", Value("version"));
    }

    private async Task<Package> PackAsync(string project, string id)
    {
        var dll = CliProcess.BuiltDll("Rx.Uhura.Cli", "uhura"); // .../Rx.Uhura.Cli/bin/CONFIGURATION/net10.0/uhura.dll
        var configuration = new DirectoryInfo(Path.GetDirectoryName(dll)!).Parent!.Name;
        var root = new DirectoryInfo(Path.GetDirectoryName(dll)!).Parent!.Parent!.Parent!.Parent!.FullName;
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "pack", Path.Combine(root, project, project + ".csproj"), "-c", configuration, "--no-build", "--no-restore", "-o", _output, "-nologo" })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(PackTimeout))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"dotnet pack {project} did not finish within {PackTimeout}.");
            }
        }

        Assert.True(process.ExitCode == 0, $"dotnet pack {project} failed:\n{await stdout}\n{await stderr}");
        var path = Directory.GetFiles(_output, id + ".*.nupkg").Single(p => !p.EndsWith(".snupkg", StringComparison.Ordinal)
            && System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(p), "^" + System.Text.RegularExpressions.Regex.Escape(id) + @"\.\d"));
        Assert.True(File.Exists(Path.ChangeExtension(path, ".snupkg")), "no symbol package next to " + path);
        return new Package(path);
    }

    private sealed class Package
    {
        private readonly string _path;

        public Package(string path)
        {
            _path = path;
            using var zip = ZipFile.OpenRead(path);
            Entries = [.. zip.Entries.Select(e => e.FullName)];
            Nuspec = XDocument.Parse(Read(Entries.Single(e => e.EndsWith(".nuspec", StringComparison.Ordinal))));
        }

        public IReadOnlyList<string> Entries { get; }

        public XDocument Nuspec { get; }

        public string Read(string entry)
        {
            using var zip = ZipFile.OpenRead(_path);
            using var reader = new StreamReader(zip.GetEntry(entry)!.Open());
            return reader.ReadToEnd();
        }
    }
}
